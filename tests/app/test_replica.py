"""Replicas of the daemon on one ledger, on the fake clock: only the leader ticks; a new
leader fences the ledger and recovers from it; a leader past its trust deadline sends
nothing more and drops its autoscaler; a takeover resends the ex-leader's launch under
its own ClientToken, so EC2 runs each launch once."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from pathlib import Path

from steadyscale.app.daemon import Run
from steadyscale.app.replica import Replica
from steadyscale.app.replication import Replication
from steadyscale.app.runtime import (
    Runtime,
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.core.instances import TAG_REQUEST
from steadyscale.core.resources import DemandItem
from steadyscale.ec2model.settings import build_settings
from steadyscale.loop.leadership import Leadership, LeaseTiming, NotLeadingError, Role
from steadyscale.providers.memory import MemoryProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger
from tests.cluster import cluster_config
from tests.loop.fakes import TableLease

TIMING = LeaseTiming(ttl_seconds=15, renew_interval_seconds=5, margin_seconds=2)
CONFIG = cluster_config(provider={"type": "memory"}, loop_interval_seconds=5)


@dataclass
class World:
    """What the replicas share: EC2 (the memory model), the ledger file, the lease row."""

    clock: FakeClock
    memory: MemoryProvider
    ledger_path: Path
    row: dict[str, object] = field(default_factory=dict)


@dataclass
class Node:
    replica: Replica
    leadership: Leadership
    lease: TableLease
    fences: list[int | None]
    runtime: Runtime


def _world(tmp_path: Path) -> World:
    clock = FakeClock(1_000.0)
    settings = build_settings(profile="none")
    return World(clock, build_memory_provider(CONFIG, clock, settings), tmp_path / "l.db")


def _replica(world: World, name: str) -> Node:
    clock = world.clock
    lease = TableLease(name, world.row)
    leadership = Leadership(lease, clock, TIMING)
    fences: list[int | None] = []
    metrics = build_metrics(CONFIG, clock)
    replication = Replication(
        leadership=leadership,
        fence=fences.append,
        on_lead=lambda: None,
        stop_on=(NotLeadingError,),
        close=lambda: None,
    )
    runtime = Runtime(
        config=CONFIG,
        clock=clock,
        provider=world.memory,
        ledger=Ledger(world.ledger_path),
        ledger_path=world.ledger_path,
        metrics=metrics,
        health=build_health(memory_prober(CONFIG, world.memory), clock, metrics),
        replication=replication,
    )
    run = Run(
        runtime, io.StringIO(), stop=threading.Event(), max_seconds=None, quiet=True, on_tick=None
    )
    return Node(Replica(run, replication), leadership, lease, fences, runtime)


def _gauges(node: Node) -> tuple[float, float]:
    leader = node.runtime.metrics.leader
    return leader.leader._value.get(), leader.epoch._value.get()


def test_only_the_leader_ticks_and_a_follower_stays_healthy(tmp_path: Path) -> None:
    world = _world(tmp_path)
    a, b = _replica(world, "a"), _replica(world, "b")
    a.runtime.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=3)], world.clock.now())
    a.leadership.step()
    b.leadership.step()
    assert a.replica.iteration() is not None
    assert b.replica.iteration() is None and b.replica.run.autoscaler is None
    assert a.fences == [1] and b.fences == []
    assert _gauges(a) == (1, 1) and _gauges(b) == (0, 0)
    assert world.memory.calls_by_action().get("RunInstances") == 1
    world.clock.advance(60)  # the follower never ticks, yet its /healthz stays fresh
    b.leadership.step()
    b.replica.iteration()
    assert b.runtime.metrics.health()[0]


def test_a_leader_past_its_trust_deadline_sends_nothing_and_drops_its_autoscaler(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path)
    a = _replica(world, "a")
    a.leadership.step()
    assert a.replica.iteration() is not None  # leads, nothing demanded yet
    a.runtime.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=1)], world.clock.now())
    world.clock.advance(13)  # paused: no renewal ran, the trust is spent
    assert a.replica.iteration() is None
    assert a.replica.run.autoscaler is None and a.fences == [1, None]
    assert "RunInstances" not in world.memory.calls_by_action()
    assert a.leadership.state.role is Role.FOLLOWER and _gauges(a) == (0, 1)


def test_a_new_leader_recovers_from_the_ledger_and_resends_under_the_same_client_token(
    tmp_path: Path,
) -> None:
    world = _world(tmp_path)
    a, b = _replica(world, "a"), _replica(world, "b")
    a.runtime.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=2)], world.clock.now())
    a.leadership.step()
    # The ex-leader's launch is done in EC2, but no answer reaches it before it is cut off
    # from the lease: the request stays open in the ledger.
    world.memory.inject("lost_response", "RunInstances", count=3)
    a.replica.iteration()
    requests = a.runtime.ledger.requests(open_only=True)
    assert requests and all(r.client_token == f"ss-{r.request_id}" for r in requests)
    world.row.update(holder=None)  # its lease expired in the database
    world.clock.advance(5)
    b.leadership.step()
    assert b.leadership.state.epoch == 2
    for _ in range(10):
        a.leadership.step()  # the ex-leader's renewal is refused
        a.replica.iteration()
        b.leadership.step()
        b.replica.iteration()
        world.clock.advance(5)
    assert a.leadership.state.role is Role.FOLLOWER and a.replica.run.autoscaler is None
    assert b.fences == [2]
    ours = [i for i in world.memory.truth() if i.state.value != "terminated"]
    assert len(ours) == 2  # the new leader found the launch's instances, made no more
    assert set(b.runtime.ledger.known_instance_ids()) == {i.instance_id for i in ours}
    assert {i.tags[TAG_REQUEST] for i in ours} == {r.request_id for r in requests}
