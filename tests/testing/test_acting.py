"""The call log read as terms of replicas: overlapping terms are found, handovers measured."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.testing.acting import Term, acting, mutations, overlaps, terms


def _call(
    replica: str | None, received: float, answered: float, action: str = "RunInstances"
) -> dict[str, Any]:
    return {
        "replica": replica,
        "action": action,
        "received_at": received,
        "at": answered,
        "mutation": not action.startswith("Describe"),
    }


def test_reads_are_left_out_and_mutations_ordered_by_receipt() -> None:
    found = mutations(
        [
            _call("r2", 5, 6, "TerminateInstances"),
            _call("r1", 1, 9, "DescribeInstances"),
            _call("r1", 2, 3),
        ]
    )
    assert [(m.replica, m.received_at) for m in found] == [("r1", 2), ("r2", 5)]


def test_consecutive_mutations_of_one_replica_make_one_term_to_its_latest_answer() -> None:
    found = terms(mutations([_call("r1", 0, 4), _call("r1", 1, 2), _call("r2", 6, 7)]))
    assert found == [Term("r1", 0, 4, 2), Term("r2", 6, 7, 1)]


def test_clean_handovers_have_no_overlap_and_a_positive_gap() -> None:
    report = acting([_call("r1", 0, 1), _call("r1", 2, 3), _call("r2", 7, 8), _call("r1", 20, 21)])
    assert report.overlaps == []
    assert report.min_gap == 4
    assert report.replicas == ["r1", "r2"]
    assert [t.replica for t in report.terms] == ["r1", "r2", "r1"]


def test_a_call_received_while_another_replicas_call_is_being_answered_overlaps() -> None:
    # r1's launch was still being answered (a slow call) when r2's arrived.
    report = acting([_call("r1", 0, 5), _call("r2", 4, 4.5)])
    assert [(o.first.replica, o.second.replica) for o in report.overlaps] == [("r1", "r2")]
    assert report.min_gap == -1
    assert "r2 began acting at 4.000 while r1 acted until 5.000" in report.overlaps[0].describe()


def test_interleaved_replicas_overlap_even_when_each_call_is_short() -> None:
    report = acting([_call("r1", 0, 1), _call("r2", 2, 3), _call("r1", 2.5, 2.6)])
    assert len(report.overlaps) == 1
    assert report.overlaps[0].first.replica == "r2"


def test_a_term_inside_a_long_one_of_another_replica_is_found_against_it() -> None:
    found = [Term("r1", 0, 10, 3), Term("r2", 1, 3.5, 1), Term("r1", 3, 4, 1), Term("r3", 5, 6, 1)]
    clashes = overlaps(found)
    assert [(o.first.replica, o.second.replica) for o in clashes] == [
        ("r1", "r2"),
        ("r2", "r1"),
        ("r1", "r3"),
    ]


def test_mutations_without_a_replica_are_counted() -> None:
    report = acting([_call(None, 0, 1), _call("r1", 3, 4)])
    assert report.unnamed == 1


def test_replicas_taking_turns_call_by_call_are_hurried_handovers() -> None:
    # Never two calls at once, yet two actors: each handover far quieter than a lease allows.
    report = acting(
        [_call("r1", 0, 1), _call("r2", 1.5, 2), _call("r1", 2.2, 3), _call("r2", 30, 31)]
    )
    assert report.overlaps == []
    assert [(h.first.replica, h.second.replica, h.gap) for h in report.hurried(10)] == [
        ("r1", "r2", 0.5),
        ("r2", "r1", pytest.approx(0.2)),
    ]
    assert report.hurried(0.1) == []
    assert (
        "r2 began acting 0.500 s after r1 last did (at 1.000)" in report.hurried(10)[0].describe()
    )
