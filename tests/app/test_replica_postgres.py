"""Replicas on a real PostgreSQL ledger and lease: an ex-leader's ledger write after a
takeover is refused (FencedError) and changes nothing, and an ex-leader that still trusts
its lease (a pause its clock did not see) is stopped by the fence before it sends EC2
anything. Expiry is moved in the database instead of waited for."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from steadyscale.app.daemon import Run
from steadyscale.app.replica import Replica
from steadyscale.app.replication import REFUSE_WRITES, build_replication
from steadyscale.app.runtime import (
    Runtime,
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.config import DatabaseURL, HaConfig
from steadyscale.core.resources import DemandItem
from steadyscale.ec2model.settings import build_settings
from steadyscale.loop.leadership import Role
from steadyscale.providers.memory import MemoryProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.store.errors import FencedError, StoreUnavailableError
from steadyscale.store.ledger import Ledger
from steadyscale.store.postgres import PostgresStore
from steadyscale.store.postgres_lease import PostgresLease, fence_query
from steadyscale.testing.postgres import PostgresServer
from tests.cluster import cluster_config

CONFIG = cluster_config(provider={"type": "memory"}, loop_interval_seconds=5)
DEMAND = [DemandItem(bundle={"CPU": 2}, count=2)]


def _expire(server: PostgresServer, url: str) -> None:
    server.sql(
        "UPDATE steadyscale_lease SET expires_at = clock_timestamp() - interval '1 second'",
        url.rsplit("/", 1)[1],
    )


def _store(ledger: Ledger) -> PostgresStore:
    store = ledger.store
    assert isinstance(store, PostgresStore)
    return store


def test_an_ex_leaders_write_after_a_takeover_is_refused_and_changes_nothing(
    postgres_server: PostgresServer, postgres: str
) -> None:
    a, b = Ledger(postgres), Ledger(postgres)
    lease_a = PostgresLease(postgres, holder="a", ttl_seconds=30)
    lease_b = PostgresLease(postgres, holder="b", ttl_seconds=30)
    try:
        assert lease_a.acquire() == 1
        _store(a).fence = fence_query(1)
        a.set_demand(DEMAND, 1.0)  # the leader writes
        _expire(postgres_server, postgres)
        assert lease_b.acquire() == 2
        _store(b).fence = fence_query(2)
        with pytest.raises(FencedError, match="another replica leads"):
            a.set_demand([DemandItem(bundle={"CPU": 2}, count=9)], 2.0)
        assert b.demand() == DEMAND and b.demand_updated_at() == 1.0
        b.set_demand([], 3.0)  # the new leader writes
        _store(a).fence = REFUSE_WRITES  # a follower writes nothing at all
        with pytest.raises(FencedError):
            a.set_demand(DEMAND, 4.0)
        assert b.demand() == []
    finally:
        for closing in (lease_a, lease_b, a, b):
            closing.close()


@dataclass
class PgReplica:
    replica: Replica
    runtime: Runtime
    lease_clock: FakeClock


@pytest.fixture
def world() -> tuple[FakeClock, MemoryProvider]:
    clock = FakeClock(1_000.0)
    return clock, build_memory_provider(CONFIG, clock, build_settings(profile="none"))


@pytest.fixture
def replicas(
    postgres: str, world: tuple[FakeClock, MemoryProvider]
) -> Iterator[tuple[PgReplica, PgReplica]]:
    made = [_replica(postgres, world, name) for name in ("a", "b")]
    yield made[0], made[1]
    for made_one in made:
        made_one.runtime.close()


def _replica(url: str, world: tuple[FakeClock, MemoryProvider], name: str) -> PgReplica:
    clock, memory = world
    lease_clock = FakeClock(0.0)  # each replica's own monotonic clock
    metrics = build_metrics(CONFIG, clock)
    ledger = Ledger(url)
    store = _store(ledger)

    def set_fence(fence: tuple[str, tuple[object, ...]]) -> None:
        store.fence = fence

    replication = build_replication(
        HaConfig(),
        url=url,
        replica_id=name,
        metrics=metrics,
        set_fence=set_fence,
        on_lead=lambda: None,
        errors=(FencedError, StoreUnavailableError),
        clock=lease_clock,
    )
    runtime = Runtime(
        config=CONFIG,
        clock=clock,
        provider=memory,
        ledger=ledger,
        ledger_path=DatabaseURL(url),
        metrics=metrics,
        health=build_health(memory_prober(CONFIG, memory), clock, metrics),
        replication=replication,
    )
    run = Run(
        runtime, io.StringIO(), stop=threading.Event(), max_seconds=None, quiet=True, on_tick=None
    )
    return PgReplica(Replica(run, replication), runtime, lease_clock)


def test_a_resumed_ex_leader_is_fenced_before_it_sends_ec2_anything(
    postgres_server: PostgresServer,
    postgres: str,
    world: tuple[FakeClock, MemoryProvider],
    replicas: tuple[PgReplica, PgReplica],
) -> None:
    _, memory = world
    a, b = replicas
    leader_a = a.replica.leadership
    assert leader_a.step().epoch == 1
    assert a.replica.iteration() is not None  # leads an empty cluster
    assert b.replica.leadership.step().role is Role.FOLLOWER
    assert b.replica.iteration() is None
    # a pauses; its lease expires in the database and b takes over and recovers.
    _expire(postgres_server, postgres)
    b.lease_clock.advance(5)  # its next attempt is due
    assert b.replica.leadership.step().epoch == 2
    assert b.replica.iteration() is not None
    b.runtime.ledger.set_demand(DEMAND, 1_000.0)
    # a resumes believing it still leads (its clock saw no pause): its first ledger write
    # is refused by the fence, so it never gets to launch for the new demand.
    assert leader_a.trusted()
    assert a.replica.iteration() is None
    assert leader_a.state.role is Role.FOLLOWER and "FencedError" in leader_a.state.reason
    assert a.replica.run.autoscaler is None
    assert "RunInstances" not in memory.calls_by_action()
    assert b.replica.iteration() is not None  # the leader launches
    assert memory.calls_by_action()["RunInstances"] >= 1


def test_a_cut_database_connection_ends_the_leadership_and_the_next_one_starts_afresh(
    postgres_server: PostgresServer,
    postgres: str,
    replicas: tuple[PgReplica, PgReplica],
) -> None:
    a, _ = replicas
    leadership = a.replica.leadership
    assert leadership.step().epoch == 1
    assert a.replica.iteration() is not None
    assert postgres_server.drop_connections(postgres.rsplit("/", 1)[1]) >= 1
    # The cut reaches the ledger's next call: the tick ends, and the leadership with it.
    assert a.replica.iteration() is None
    assert leadership.state.role is Role.FOLLOWER
    assert "Unavailable" in leadership.state.reason
    assert a.replica.run.autoscaler is None
    # The lease's own connection was cut too: the next attempt's first read finds it
    # broken, and the take reconnects and retakes the lease under a new epoch, so the
    # replica recovers afresh.
    a.lease_clock.advance(5)
    assert leadership.step().epoch == 2
    assert a.replica.iteration() is not None
    assert a.replica.epoch == 2
