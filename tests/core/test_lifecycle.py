"""The lifecycle table: legal moves recorded, illegal ones refused, every path can end."""

from __future__ import annotations

import pytest

from steadyscale.core.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransitionError,
    NodeRecord,
    Status,
)


def test_a_move_is_recorded_with_time_and_reason() -> None:
    record = NodeRecord(node_id="n-1", node_type="cpu", status=Status.QUEUED, created_at=0)
    record.move(Status.REQUESTED, 1.0, "RunInstances r-1")
    record.move(Status.LAUNCHED, 2.0, "answered")
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
