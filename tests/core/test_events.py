"""EC2's events as typed values: AWS's shapes parsed, anything else Malformed (never an
exception); stale state changes told apart; sightings never move an instance back."""

from __future__ import annotations

import json

import pytest

from steadyscale.core.events import (
    InterruptionWarning,
    Malformed,
    RebalanceRecommendation,
    ScheduledRetirement,
    StateChange,
    merge,
    parse_event,
    parse_time,
    sightings,
    stale,
)
from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import NodeRecord, Status
from tests.eventshapes import (
    body,
    interruption_warning,
    iso,
    rebalance,
    retirement,
    state_change,
)

T = 1_700_000_000.0


def test_parse_time_reads_aws_stamps_with_a_zone() -> None:
    assert parse_time(iso(T)) == T
    assert parse_time("2024-01-01T01:00:00.5+01:00") == parse_time("2024-01-01T00:00:00Z") + 0.5
    # AWS Health's startTime is an HTTP date.
    assert parse_time("Sat, 05 Jun 2019 14:00:00 GMT") == parse_time("2019-06-05T14:00:00Z")
    for bad in ("2024-01-01T00:00:00", "yesterday", "2024-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_each_event_type_is_parsed_from_awss_shape() -> None:
    change = parse_event(body(state_change("i-1", "running", T)))
    assert isinstance(change, StateChange)
    assert (change.instance_id, change.state, change.time) == ("i-1", "running", T)
    warning = parse_event(body(interruption_warning("i-2", T)))
    assert isinstance(warning, InterruptionWarning)
    assert warning.deadline == T + 120 and warning.action == "terminate"
    assert isinstance(parse_event(body(rebalance("i-3", T))), RebalanceRecommendation)
    retiring = parse_event(body(retirement("i-4", T, T + 86400)))
    assert isinstance(retiring, ScheduledRetirement)
    assert retiring.instance_ids == ("i-4",) and retiring.deadline == T + 86400


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        json.dumps({"detail-type": "EC2 Instance State-change Notification"}),
        body({**state_change("i-1", "running", T), "time": "noon"}),
        body({**state_change("i-1", "running", T), "detail": {"state": "running"}}),
        body({**state_change("i-1", "running", T), "detail": {"instance-id": "x", "state": "r"}}),
        body(
            {
                **retirement("i-1", T, T),
                "resources": [],
                "detail": {
                    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                    "affectedEntities": [],
                },
            }
        ),
    ],
)
def test_malformed_messages_are_malformed_never_an_exception(text: str) -> None:
    parsed = parse_event(text)
    assert isinstance(parsed, Malformed) and parsed.kind == "malformed" and parsed.reason


def test_well_formed_events_of_no_use_are_unknown() -> None:
    other = {**rebalance("i-1", T), "detail-type": "EC2 AMI State Change"}
    parsed = parse_event(body(other))
    assert isinstance(parsed, Malformed) and parsed.kind == "unknown"
    health = retirement("i-1", T, T)
    health["detail"]["eventTypeCode"] = "AWS_EC2_OPERATIONAL_ISSUE"
    parsed = parse_event(body(health))
    assert isinstance(parsed, Malformed) and parsed.kind == "unknown"


def _record(status: Status, moved_at: float) -> NodeRecord:
    record = NodeRecord("n-1", "cpu", Status.QUEUED, created_at=0.0)
    record.status = status
    record.instance_id = "i-1"
    record.launched_at = moved_at
    if status is not Status.LAUNCHED:
        record.running_at = moved_at
    return record


def test_a_state_change_older_than_the_nodes_last_move_is_stale() -> None:
    record = _record(Status.RUNNING, T)
    assert stale(record, StateChange("e", T - 1, "i-1", "running"))
    assert not stale(record, StateChange("e", T + 1, "i-1", "running"))
    # Nothing undoes a final state: never stale.
    assert not stale(record, StateChange("e", T - 1, "i-1", "terminated"))
    # Older than the listing that first missed it: no evidence it is there now.
    record.missing_since = T + 10
    assert stale(record, StateChange("e", T + 5, "i-1", "running"))
    # Further along than the node: news, however late (a stale listing showed it pending).
    pending = _record(Status.PENDING, T)
    assert not stale(pending, StateChange("e", T - 5, "i-1", "running"))
    assert stale(pending, StateChange("e", T - 5, "i-1", "pending"))
    # A node EC2 never showed: any news of it is news (its launch answer came later).
    assert not stale(_record(Status.LAUNCHED, T), StateChange("e", T - 5, "i-1", "running"))


def test_sightings_keep_the_furthest_state_whatever_the_order() -> None:
    shown = sightings(
        [
            StateChange("a", T + 2, "i-1", "running"),
            StateChange("b", T + 1, "i-1", "pending"),  # reordered
            StateChange("c", T + 2, "i-1", "running"),  # duplicate
            StateChange("d", T, "i-2", "no-such-state"),
        ]
    )
    assert {k: v.state for k, v in shown.items()} == {"i-1": "running"}


def test_merge_keeps_the_listings_view_unless_an_event_shows_more() -> None:
    listed = {
        "i-1": CloudInstance("i-1", "running", private_ip="10.0.0.1", tags={"a": "b"}),
        "i-2": CloudInstance("i-2", "running"),
    }
    events = {
        "i-1": CloudInstance("i-1", "shutting-down"),
        "i-2": CloudInstance("i-2", "pending"),
        "i-3": CloudInstance("i-3", "pending"),
    }
    merged = merge(listed, events)
    assert merged["i-1"].state == "shutting-down" and merged["i-1"].private_ip == "10.0.0.1"
    assert merged["i-2"].state == "running"
    assert merged["i-3"].state == "pending"
