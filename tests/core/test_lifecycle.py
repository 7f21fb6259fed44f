"""The lifecycle table: legal moves recorded, illegal ones refused, every path can end."""

from __future__ import annotations

from dataclasses import fields

import pytest

from steadyscale.core.lifecycle import (
    CLEAR,
    HAS_INSTANCE,
    REQUIRED,
    TERMINAL,
    TRANSITIONS,
    IllegalTransitionError,
    IncompleteMoveError,
    NodeRecord,
    NodeUpdate,
    Status,
)


def test_a_move_is_recorded_with_time_and_reason() -> None:
    record = NodeRecord(node_id="n-1", node_type="cpu", status=Status.QUEUED, created_at=0)
    record.move(Status.REQUESTED, 1.0, "RunInstances r-1", NodeUpdate(request_id="r-1"))
    record.move(Status.LAUNCHED, 2.0, "answered", NodeUpdate(instance_id="i-1", launched_at=2.0))
    assert [(e.status, e.at, e.reason) for e in record.history] == [
        (Status.REQUESTED, 1.0, "RunInstances r-1"),
        (Status.LAUNCHED, 2.0, "answered"),
    ]


def test_illegal_moves_are_refused_and_change_nothing() -> None:
    record = NodeRecord(node_id="n-1", node_type="cpu", status=Status.RUNNING, created_at=0)
    with pytest.raises(IllegalTransitionError, match="running -> pending"):
        record.move(Status.PENDING, 1.0, "a stale read")
    assert record.status is Status.RUNNING and record.history == []


def test_invisible_is_never_a_direct_path_to_terminated() -> None:
    # A node EC2 does not show can only end through TERMINATING (we asked, EC2 confirmed).
    for status in (Status.LAUNCHED, Status.PENDING, Status.RUNNING, Status.LOST):
        assert Status.TERMINATED not in TRANSITIONS[status]


def test_terminal_statuses_have_no_exit_and_every_status_can_reach_one() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
    for start in Status:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & TERMINAL, f"{start} can never end"


def test_every_status_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Status)


def test_a_move_whose_status_needs_a_missing_field_is_refused_and_changes_nothing() -> None:
    record = NodeRecord(node_id="n-1", node_type="cpu", status=Status.QUEUED, created_at=0)
    with pytest.raises(IncompleteMoveError, match="requested needs request_id"):
        record.move(Status.REQUESTED, 1.0, "RunInstances r-1")
    assert record.status is Status.QUEUED and record.history == []
    record.move(Status.REQUESTED, 1.0, "RunInstances r-1", NodeUpdate(request_id="r-1"))
    # An update that brings only part of what LAUNCHED needs is refused whole.
    with pytest.raises(IncompleteMoveError, match="launched needs launched_at") as refused:
        record.move(Status.LAUNCHED, 2.0, "answered", NodeUpdate(instance_id="i-1"))
    assert refused.value.missing == ("launched_at",)
    assert record.instance_id is None and [e.status for e in record.history] == [Status.REQUESTED]


def test_each_status_with_an_instance_needs_its_id_and_its_times() -> None:
    for status in (*HAS_INSTANCE, Status.TERMINATED):
        assert "instance_id" in REQUIRED[status], status
    assert "running_at" in REQUIRED[Status.RUNNING] and "running_at" in REQUIRED[Status.READY]
    assert "terminate_requested_at" in REQUIRED[Status.TERMINATING]
    record = NodeRecord(
        node_id="n-1", node_type="cpu", status=Status.PENDING, created_at=0, instance_id="i-1"
    )
    with pytest.raises(IncompleteMoveError, match="running needs running_at"):
        record.move(Status.RUNNING, 5.0, "EC2 shows it running")
    with pytest.raises(IncompleteMoveError, match="terminating needs terminate_requested_at"):
        record.move(Status.TERMINATING, 5.0, "not needed")
    # What the record already carries counts: READY needs nothing new once running.
    record.move(Status.RUNNING, 5.0, "EC2 shows it running", NodeUpdate(running_at=5.0))
    record.move(Status.READY, 6.0, "no health check")
    assert (record.status, record.running_at) == (Status.READY, 5.0)


def test_an_update_leaves_what_it_does_not_name_and_clears_only_when_told() -> None:
    record = NodeRecord(
        node_id="n-1",
        node_type="cpu",
        status=Status.READY,
        created_at=0,
        instance_id="i-1",
        private_ip="10.0.0.1",
        idle_since=50.0,
        missing_since=40.0,
    )
    record.apply(NodeUpdate(last_seen_at=60.0))
    assert (record.private_ip, record.idle_since, record.missing_since) == ("10.0.0.1", 50.0, 40.0)
    assert record.last_seen_at == 60.0
    record.apply(NodeUpdate(missing_since=CLEAR))
    assert record.missing_since is None and record.idle_since == 50.0
    record.apply(NodeUpdate(idle_since=CLEAR))
    assert record.idle_since is None
    record.apply(NodeUpdate(idle_since=70.0))
    assert record.idle_since == 70.0


def test_only_a_sighting_alone_is_memory_only() -> None:
    assert NodeUpdate(last_seen_at=1.0).memory_only
    assert NodeUpdate().memory_only
    assert not NodeUpdate(last_seen_at=1.0, first_seen_at=1.0).memory_only
    assert not NodeUpdate(last_seen_at=1.0, missing_since=CLEAR).memory_only
    assert not NodeUpdate(idle_since=CLEAR).memory_only
    assert not NodeUpdate(last_error="refused").memory_only


def test_an_update_of_any_field_but_the_time_last_seen_is_written() -> None:
    """``memory_only`` names the fields one by one (it runs for every sighting): a field
    added to ``NodeUpdate`` and forgotten there would never reach the ledger."""
    for f in fields(NodeUpdate):
        value: object = 1.0 if "float" in str(f.type) else "value"
        update = NodeUpdate(**{f.name: value})  # type: ignore[arg-type]
        assert update.memory_only is (f.name == "last_seen_at"), f.name


def test_an_update_sets_every_field_it_names_and_names_only_record_fields() -> None:
    record = NodeRecord(node_id="n-1", node_type="cpu", status=Status.QUEUED, created_at=0)
    values: dict[str, object] = {}
    for number, f in enumerate(fields(NodeUpdate), start=1):
        values[f.name] = float(number) if "float" in str(f.type) else f"value-{number}"
    record.apply(NodeUpdate(**values))  # type: ignore[arg-type]
    assert {name: getattr(record, name) for name in values} == values
    required = {name for names in REQUIRED.values() for name in names}
    assert required <= set(values)
