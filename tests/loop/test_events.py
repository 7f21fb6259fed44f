"""The loop with EC2's events (an ``events`` block, an in-process queue on the fake clock):
each event type drives its transition; duplicates, reorders, losses and early events change
nothing they should not; a daemon killed between receiving and deleting acts once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from steadyscale.app.runtime import build_health, build_metrics, memory_prober
from steadyscale.core.lifecycle import ACTIVE, STARTING, Status
from steadyscale.emulator import Fault
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.loop.eventful import Eventful
from steadyscale.loop.inbox import PolledInbox
from steadyscale.ops.status import collect_status, render_status
from steadyscale.store.ledger import Ledger
from tests import eventshapes as shapes
from tests.loop.eventful import EventCluster, event_cluster, spot_types


class Killed(BaseException):
    """The process dies here (kill -9): nothing after it runs."""


def _mirror(ec: EventCluster, sent: dict[str, str]) -> None:
    """EventBridge: a state-change event for each true state change since the last call."""
    now = ec.cluster.clock.now()
    for inst in ec.cluster.truth():
        state = inst.state.value
        if state != "gone" and sent.get(inst.instance_id) != state:
            sent[inst.instance_id] = state
            ec.send(shapes.state_change(inst.instance_id, state, now))


def _converge(ec: EventCluster, ready: int, sent: dict[str, str], *, settled: bool = True) -> None:
    ec.cluster.run(
        lambda r: ec.cluster.count(Status.READY) >= ready and (r.settled or not settled),
        max_ticks=100,
        each=lambda _: _mirror(ec, sent),
    )


def _metric(ec: EventCluster, name: str, **labels: str) -> float:
    value = ec.cluster.autoscaler.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def _launched(ec: EventCluster) -> int:
    return len(ec.cluster.truth())


def test_state_changes_move_nodes_on_without_lookups_while_events_flow() -> None:
    ec = event_cluster()
    sent: dict[str, str] = {}
    ec.cluster.demand(5)
    _converge(ec, 5, sent)
    # One full listing at the start; the events moved every node since.
    assert ec.cluster.memory.calls.count("DescribeInstances") <= 2
    assert _metric(ec, "steadyscale_events_received_total", type="state_change") >= 10
    assert len(ec.queue) == 0  # every message deleted once its effect was kept


def test_a_lost_state_change_holds_a_node_back_no_longer_than_polling_would() -> None:
    ec = event_cluster()  # the full listing every 300 s while events flow
    sent: dict[str, str] = {}
    lost: list[str] = []

    def mirror_losing_one(_: object) -> None:
        now = ec.cluster.clock.now()
        for inst in ec.cluster.truth():
            state = inst.state.value
            if state == "gone" or sent.get(inst.instance_id) == state:
                continue
            sent[inst.instance_id] = state
            if state == "running" and not lost:
                lost.append(inst.instance_id)  # EventBridge never delivers this one
                continue
            ec.send(shapes.state_change(inst.instance_id, state, now))

    ec.cluster.demand(3)
    ec.cluster.run(
        lambda r: ec.cluster.count(Status.READY) >= 3, max_ticks=100, each=mirror_losing_one
    )
    [truth] = [i for i in ec.cluster.truth() if i.instance_id == lost[0]]
    seen = ec.node(lost[0]).running_at
    assert truth.running_at is not None and seen is not None
    # A lookup once nothing showed it for listing_interval_seconds (30 s), plus a tick: not
    # the next full listing, up to 300 s away.
    assert seen - truth.running_at <= 30 + 5


def test_without_events_the_full_listing_still_converges_and_counts_unwarned() -> None:
    ec = event_cluster(available_node_types=spot_types())
    ec.cluster.demand(3)
    # No event ever comes: the listing (every full_listing_interval_seconds) converges.
    ec.cluster.run(lambda r: ec.cluster.count(Status.READY) >= 3 and r.settled, max_ticks=150)
    victim = ec.up()[0]
    assert victim.instance_id is not None
    ec.cluster.memory.interrupt([victim.instance_id])
    ec.cluster.run(lambda r: victim.status is Status.INTERRUPTED, max_ticks=150)
    assert _metric(ec, "steadyscale_interruptions_total", warned="no") == 1
    assert victim.history[-1].status is Status.INTERRUPTED


def test_a_warning_takes_the_node_out_at_once_and_replaces_it_in_another_pool() -> None:
    ec = event_cluster(
        available_node_types=spot_types(),
        provider={"type": "memory", "subnets": ["subnet-aaaa", "subnet-bbbb"]},
    )
    sent: dict[str, str] = {}
    ec.cluster.demand(2)
    _converge(ec, 2, sent)
    victim = ec.up()[0]
    assert victim.instance_id is not None
    pools = {r.request_id: r.subnet_id for r in ec.cluster.ledger.requests()}
    before = _launched(ec)
    ec.send(shapes.interruption_warning(victim.instance_id, ec.cluster.clock.now()))
    ec.cluster.tick()
    assert _launched(ec) == before + 1  # the replacement, in the same tick
    # Drained (its hook, if any, runs now), never terminated by us: EC2 takes it.
    assert victim.status is Status.DRAINING
    assert victim.terminate_requested_at is None
    replacement = next(r for r in ec.cluster.autoscaler.records.values() if r.status in STARTING)
    spot_pools = {r.request_id: r.subnet_id for r in ec.cluster.ledger.requests()}
    assert replacement.request_id is not None and victim.request_id is not None
    assert spot_pools[replacement.request_id] != pools[victim.request_id]
    _status_shows_the_warning(ec, victim.node_id, victim.instance_id)
    ec.cluster.run(  # the warned node waits for EC2, draining
        lambda r: replacement.status is Status.READY,
        max_ticks=100,
        each=lambda _: _mirror(ec, sent),
    )
    ec.cluster.memory.interrupt([victim.instance_id])
    _mirror(ec, sent)
    ec.cluster.tick()
    assert ec.node(victim.instance_id).status is Status.INTERRUPTED
    assert _metric(ec, "steadyscale_interruptions_total", warned="yes") == 1
    assert _metric(ec, "steadyscale_replacements_ready_before_reclaim_total") == 1
    ec.cluster.run(lambda r: r.settled, max_ticks=50, each=lambda _: _mirror(ec, sent))
    assert _launched(ec) == before + 1  # the reclaim launched nothing more
    assert collect_status(ec.cluster.config, ec.cluster.ledger).events == []


def _status_shows_the_warning(ec: EventCluster, node_id: str, instance_id: str) -> None:
    """``status`` (and ``--json``) lists the warned node with EC2's deadline."""
    now = ec.cluster.clock.now()
    report = collect_status(ec.cluster.config, ec.cluster.ledger, now)
    [mark] = report.events
    assert (mark.node_id, mark.instance_id, mark.kind) == (node_id, instance_id, "warned")
    assert mark.deadline is not None and mark.deadline > now
    text = render_status(report)
    left = f"{mark.deadline - now:.0f}s"
    assert f"EC2 events: 1 warned; soonest deadline in {left}: {instance_id} (" in text


def test_a_duplicated_warning_replaces_once() -> None:
    ec = event_cluster(available_node_types=spot_types())
    sent: dict[str, str] = {}
    ec.cluster.demand(2)
    _converge(ec, 2, sent)
    victim = ec.up()[0]
    assert victim.instance_id is not None
    before = _launched(ec)
    warning = shapes.interruption_warning(victim.instance_id, ec.cluster.clock.now())
    ec.send(warning)
    ec.send(warning)  # EventBridge delivers at least once
    ec.cluster.tick()
    again = {**warning, "id": "another-delivery"}  # the same news under another id
    ec.send(again)
    ec.cluster.tick()
    ec.cluster.tick()
    assert _launched(ec) == before + 1
    assert _metric(ec, "steadyscale_events_duplicates_dropped_total") == 2
    assert len(ec.queue) == 0


def test_reordered_and_stale_state_changes_never_move_a_node_back() -> None:
    ec = event_cluster()
    sent: dict[str, str] = {}
    ec.cluster.demand(1)
    _converge(ec, 1, sent)
    node = ec.up()[0]
    assert node.instance_id is not None
    moved = len(node.history)
    old = node.history[-1].at - 30
    ec.send(shapes.state_change(node.instance_id, "pending", old))
    ec.send(shapes.state_change(node.instance_id, "running", old))
    for _ in range(3):
        ec.cluster.tick()
    assert node.status is Status.READY and len(node.history) == moved
    assert _metric(ec, "steadyscale_events_dropped_total", reason="stale") == 2
    assert node.missing_since is None


def test_an_early_event_is_held_until_the_launch_answer_names_its_instance() -> None:
    ec = event_cluster()
    ec.cluster.memory.inject(Fault.LOST_RESPONSE, "RunInstances", count=3)
    ec.cluster.demand(2)
    ec.cluster.tick()
    assert ec.cluster.count(Status.REQUESTED) == 2  # the answer was lost: ids unknown
    now = ec.cluster.clock.now()
    for inst in ec.cluster.truth():
        ec.send(shapes.state_change(inst.instance_id, "running", now))
    ec.send(shapes.state_change("i-0123456789abcdef0", "running", now))  # not ours
    ec.cluster.tick()
    ec.cluster.run(lambda r: ec.cluster.count(Status.REQUESTED) == 0, max_ticks=20)
    ec.cluster.run(lambda r: ec.cluster.count(Status.READY) == 2, max_ticks=5)
    assert ec.cluster.memory.calls.count("DescribeInstances") <= 2
    assert len(ec.cluster.truth()) == 2
    ec.cluster.run(lambda r: len(ec.queue) == 0, max_ticks=20)
    assert _metric(ec, "steadyscale_events_dropped_total", reason="stranger") == 1


def test_a_strangers_event_is_dropped_at_once_when_no_launch_awaits_an_answer() -> None:
    ec = event_cluster()
    ec.send(shapes.interruption_warning("i-0123456789abcdef0", ec.cluster.clock.now()))
    ec.cluster.tick()
    assert len(ec.queue) == 0
    assert _metric(ec, "steadyscale_events_dropped_total", reason="stranger") == 1


def test_malformed_messages_are_deleted_counted_and_never_break_a_tick() -> None:
    ec = event_cluster()
    ec.queue.send("not json")
    ec.queue.send('{"detail-type": "EC2 Spot Instance Interruption Warning"}')
    ec.send({**shapes.rebalance("i-1", 0), "detail-type": "EC2 AMI State Change"})
    report = ec.cluster.tick()
    assert report.errors == []
    assert len(ec.queue) == 0
    assert _metric(ec, "steadyscale_events_received_total", type="malformed") == 2
    assert _metric(ec, "steadyscale_events_received_total", type="unknown") == 1


def test_rebalance_replaces_ahead_of_time_under_the_budget_never_below_demand() -> None:
    ec = event_cluster(available_node_types=spot_types())
    sent: dict[str, str] = {}
    ec.cluster.demand(3)
    _converge(ec, 3, sent)
    old = [r.node_id for r in ec.up()]
    now = ec.cluster.clock.now()
    for record in ec.up():
        assert record.instance_id is not None
        ec.send(shapes.rebalance(record.instance_id, now))
    records = ec.cluster.autoscaler.records

    def check(_: object) -> None:
        _mirror(ec, sent)
        assert ec.cluster.count(Status.READY) >= 3  # never below what demand needs
        starting = sum(1 for r in records.values() if r.status in STARTING)
        assert starting <= 1  # max_rebalance_replacements: 1 per node type

    ec.cluster.run(
        lambda r: all(records[n].status not in ACTIVE for n in old) and r.settled,
        max_ticks=200,
        each=check,
    )
    assert _launched(ec) == 6
    assert ec.cluster.count(Status.READY) == 3


def test_a_scheduled_retirement_is_replaced_before_its_deadline() -> None:
    ec = event_cluster(available_node_types=spot_types())
    sent: dict[str, str] = {}
    ec.cluster.demand(1)
    _converge(ec, 1, sent)
    node = ec.up()[0]
    assert node.instance_id is not None
    now = ec.cluster.clock.now()
    ec.send(shapes.retirement(node.instance_id, now, now + 3600))
    ec.cluster.run(
        lambda r: node.status not in ACTIVE and r.settled,
        max_ticks=100,
        each=lambda _: _mirror(ec, sent),
    )
    assert ec.cluster.clock.now() < now + 3600
    assert ec.cluster.count(Status.READY) == 1 and _launched(ec) == 2


def test_a_warned_node_ec2_never_takes_is_terminated_after_the_grace() -> None:
    ec = event_cluster(
        available_node_types=spot_types(),
        visibility_timeout_seconds=120,
        events={"full_listing_interval_seconds": 60},
    )
    sent: dict[str, str] = {}
    ec.cluster.demand(1)
    _converge(ec, 1, sent)
    node = ec.up()[0]
    assert node.instance_id is not None
    warned_at = ec.cluster.clock.now()
    ec.send(shapes.interruption_warning(node.instance_id, warned_at))
    ec.cluster.run(
        lambda r: node.status is Status.TERMINATING, max_ticks=100, each=lambda _: _mirror(ec, sent)
    )
    assert ec.cluster.clock.now() >= warned_at + 120 + 120
    assert "still not reclaimed" in node.history[-1].reason


class _DiesOnDelete(PolledInbox):
    def delete(self, receipts: Sequence[str]) -> None:
        raise Killed


def test_a_daemon_killed_between_receiving_and_deleting_acts_once(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    ec = event_cluster(available_node_types=spot_types(), ledger_path=path)
    sent: dict[str, str] = {}
    ec.cluster.demand(2)
    _converge(ec, 2, sent)
    victim = ec.up()[0]
    assert victim.instance_id is not None
    before = _launched(ec)
    ec.send(shapes.interruption_warning(victim.instance_id, ec.cluster.clock.now()))
    first = ec.cluster.autoscaler
    assert isinstance(first.events, Eventful)
    first.events.consumer.inbox = _DiesOnDelete(ec.queue, max_messages=10, on_error=_fail)
    with pytest.raises(Killed):
        first.tick()
    ec.cluster.ledger.close()
    # A new daemon on the same ledger and EC2; the message comes back after its
    # visibility timeout.
    clock = ec.cluster.clock
    config = ec.cluster.config
    metrics = build_metrics(config, clock)
    ledger = Ledger(path)
    second = Autoscaler(
        config,
        ec.cluster.memory,
        ledger,
        clock,
        metrics=metrics,
        health=build_health(memory_prober(config, ec.cluster.memory), clock, metrics),
        inbox=PolledInbox(ec.queue, max_messages=10, on_error=_fail),
    )
    for _ in range(20):
        second.tick()
        _mirror(ec, sent)
        clock.advance(config.loop_interval_seconds)
    assert _launched(ec) == before + 1  # one replacement, whoever launched it
    assert len(ec.queue) == 0
    assert victim.node_id in second.events.warned()
    ledger.close()


def _fail(exc: Exception) -> None:
    raise AssertionError(exc)


def test_impaired_status_checks_replace_a_node_on_the_memory_backend() -> None:
    ec = event_cluster(available_node_types=spot_types())
    sent: dict[str, str] = {}
    ec.cluster.demand(1)
    _converge(ec, 1, sent)
    node = ec.up()[0]
    assert node.instance_id is not None
    ec.cluster.memory.model.notices.impair([node.instance_id], True)
    ec.cluster.run(
        lambda r: node.status not in ACTIVE and r.settled,
        max_ticks=150,
        each=lambda _: _mirror(ec, sent),
    )
    assert ec.cluster.memory.calls.count("DescribeInstanceStatus") >= 1
    assert "impaired" in node.history[-1].reason or "impaired" in node.history[-2].reason
    assert ec.cluster.count(Status.READY) == 1 and _launched(ec) == 2
