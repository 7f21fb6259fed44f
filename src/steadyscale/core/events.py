"""EC2's events as typed values, pure: an EventBridge event's JSON (the body of an SQS
message) in, one of the event types the loop acts on out, or ``Malformed`` saying why not.

The shapes are AWS's: ``id``, ``source``, ``detail-type``, ``time`` (ISO 8601, UTC) and a
``detail`` per type. An event is a report of the past that may come late, twice, out of
order or never: ``stale`` says when one tells nothing new about a node, and
``sightings`` turns state changes into what a listing would have shown of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import NodeRecord, Status

STATE_CHANGE = "EC2 Instance State-change Notification"
INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE = "EC2 Instance Rebalance Recommendation"
HEALTH = "AWS Health Event"
# AWS Health's event codes for an instance EC2 will retire or stop on a schedule.
RETIREMENT_CODES = frozenset(
    {
        "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        "AWS_EC2_INSTANCE_STOP_SCHEDULED",
        "AWS_EC2_INSTANCE_REBOOT_MAINTENANCE_SCHEDULED",
        "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED",
    }
)
# EC2's states in the order an instance goes through them: a later one is never undone.
STATE_RANK: Mapping[str, int] = {
    "pending": 0,
    "running": 1,
    "stopping": 2,
    "stopped": 3,
    "shutting-down": 4,
    "terminated": 5,
}
_FINAL = frozenset({"shutting-down", "terminated"})
# Statuses whose last move was the autoscaler's own, not something EC2 showed.
_UNSEEN = frozenset({Status.QUEUED, Status.REQUESTED, Status.LAUNCHED})
# The furthest state of EC2's a node in each status was shown in (STATE_RANK's scale).
_SHOWN_RANK = {
    Status.PENDING: 0,
    Status.RUNNING: 1,
    Status.READY: 1,
    Status.LOST: 1,
    Status.DRAINING: 1,
    Status.TERMINATING: 1,
    Status.INTERRUPTED: 3,
}
# How long after a spot interruption warning EC2 takes the instance.
WARNING_LEAD_SECONDS = 120.0


@dataclass(frozen=True)
class StateChange:
    event_id: str
    time: float
    instance_id: str
    state: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)


@dataclass(frozen=True)
class InterruptionWarning:
    event_id: str
    time: float
    instance_id: str
    action: str  # terminate, stop or hibernate

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)

    @property
    def deadline(self) -> float:
        return self.time + WARNING_LEAD_SECONDS


@dataclass(frozen=True)
class RebalanceRecommendation:
    event_id: str
    time: float
    instance_id: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)


@dataclass(frozen=True)
class ScheduledRetirement:
    event_id: str
    time: float
    instance_ids: tuple[str, ...]
    code: str
    deadline: float | None  # when EC2 acts (the event's startTime), if it says


Ec2Event: TypeAlias = (
    StateChange | InterruptionWarning | RebalanceRecommendation | ScheduledRetirement
)
KINDS: Mapping[type, str] = {
    StateChange: "state_change",
    InterruptionWarning: "interruption_warning",
    RebalanceRecommendation: "rebalance_recommendation",
    ScheduledRetirement: "scheduled_retirement",
}


@dataclass(frozen=True)
class Malformed:
    """A message that is not an event the loop acts on: why, for the log line."""

    reason: str
    kind: str = "malformed"  # "malformed", or "unknown" for a well-formed event of no use


def kind(event: Ec2Event) -> str:
    return KINDS[type(event)]


_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(Z|[+-]\d{2}:?\d{2})$"
)


# AWS Health writes its times as HTTP dates: ``Sat, 05 Jun 2019 14:00:00 GMT``.
_HTTP_DATE = re.compile(
    r"^(?:[A-Za-z]{3}, )?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (?:GMT|UTC)$"
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def parse_time(text: str) -> float:
    """ISO 8601 with a zone (``2024-01-01T00:00:00Z``, EventBridge's) or an HTTP date (AWS
    Health's) as seconds since the epoch; ValueError if neither. (Arithmetic, not
    ``datetime``: the core reads no clock.)"""
    http = _HTTP_DATE.match(text.strip())
    if http is not None and http.group(2).lower() in _MONTHS:
        day, month = int(http.group(1)), _MONTHS.index(http.group(2).lower()) + 1
        year, hour, minute, second = (int(g) for g in http.groups()[2:])
        clock = hour * 3600 + minute * 60 + second
        return _days_from_civil(year, month, day) * 86400.0 + clock
    match = _ISO.match(text.strip())
    if match is None:
        raise ValueError(f"time {text!r} is neither ISO 8601 with a zone nor an HTTP date")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise ValueError(f"time {text!r} is out of range")
    fraction = float(match.group(7) or 0.0)
    zone = match.group(8)
    offset = 0
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    days = _days_from_civil(year, month, day)
    return days * 86400.0 + hour * 3600 + minute * 60 + second + fraction - offset


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_event(body: str) -> Ec2Event | Malformed:
    """One SQS message body as an event. Never raises: anything else is ``Malformed``."""
    try:
        raw = json.loads(body)
    except ValueError:
        return Malformed("not JSON")
    if not isinstance(raw, dict):
        return Malformed("not a JSON object")
    try:
        return _typed(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Malformed(f"{raw.get('detail-type', 'event')!s}: {type(exc).__name__} {exc}")


def _typed(raw: Mapping[str, Any]) -> Ec2Event | Malformed:
    detail_type = raw["detail-type"]
    source = raw.get("source")
    event_id = str(raw["id"])
    time = parse_time(str(raw["time"]))
    detail = raw["detail"]
    if not isinstance(detail, dict):
        raise TypeError("detail is not an object")
    if source == "aws.ec2" and detail_type == STATE_CHANGE:
        return StateChange(event_id, time, _instance(detail["instance-id"]), str(detail["state"]))
    if source == "aws.ec2" and detail_type == INTERRUPTION_WARNING:
        action = str(detail.get("instance-action", "terminate"))
        return InterruptionWarning(event_id, time, _instance(detail["instance-id"]), action)
    if source == "aws.ec2" and detail_type == REBALANCE:
        return RebalanceRecommendation(event_id, time, _instance(detail["instance-id"]))
    if source == "aws.health" and detail_type == HEALTH:
        return _health(event_id, time, raw, detail)
    return Malformed(f"{source}/{detail_type} is not an event steadyscale acts on", "unknown")


def _health(
    event_id: str, time: float, raw: Mapping[str, Any], detail: Mapping[str, Any]
) -> Ec2Event | Malformed:
    code = str(detail.get("eventTypeCode", ""))
    if code not in RETIREMENT_CODES:
        return Malformed(f"AWS Health {code or 'event'} is not a scheduled change", "unknown")
    ids = [
        str(entity["entityValue"])
        for entity in detail.get("affectedEntities", [])
        if str(entity.get("entityValue", "")).startswith("i-")
    ]
    # EventBridge also names the instances as ARNs in ``resources``.
    ids += [str(arn).rsplit("/", 1)[-1] for arn in raw.get("resources", []) if "instance/" in arn]
    if not ids:
        raise ValueError("names no instance")
    start = detail.get("startTime")
    deadline = parse_time(str(start)) if start else None
    return ScheduledRetirement(event_id, time, tuple(dict.fromkeys(ids)), code, deadline)


def _instance(value: Any) -> str:
    text = str(value)
    if not text.startswith("i-"):
        raise ValueError(f"{text!r} is not an instance id")
    return text


def stale(record: NodeRecord, event: StateChange) -> bool:
    """Whether a state change tells nothing new of ``record``: it happened before the
    node's last move, or before a listing first missed it (it is no evidence the node is
    there now). Never stale: a final state (shutting down, terminated: nothing undoes it),
    a state further along than the node's (a listing may have shown an older state later),
    any news of a node EC2 never showed yet (its last move was ours, not a sighting)."""
    if event.state in _FINAL or record.status in _UNSEEN:
        return False
    if STATE_RANK.get(event.state, -1) > _SHOWN_RANK.get(record.status, -1):
        return False  # further along than the node is recorded: news, however late
    if record.missing_since is not None and event.time < record.missing_since:
        return True
    last = _last_move(record)
    return last is not None and event.time < last


def _last_move(record: NodeRecord) -> float | None:
    """When the node last moved: its history's last entry, or (a record read back without
    its history) the latest time a move set on it."""
    if record.history:
        return record.history[-1].at
    times = [
        t
        for t in (record.first_seen_at, record.running_at, record.terminate_requested_at)
        if t is not None
    ]
    return max(times) if times else None


def sightings(changes: Iterable[StateChange]) -> dict[str, CloudInstance]:
    """What the state changes show, by instance id, as a listing would: the furthest state
    each reached (a reordered or duplicated event never moves one back)."""
    shown: dict[str, CloudInstance] = {}
    for change in changes:
        rank = STATE_RANK.get(change.state)
        if rank is None:
            continue
        before = shown.get(change.instance_id)
        if before is None or STATE_RANK[before.state] < rank:
            shown[change.instance_id] = CloudInstance(
                change.instance_id, change.state, state_reason=f"event: {change.state}"
            )
    return shown


def merge(
    listed: Mapping[str, CloudInstance], events: Mapping[str, CloudInstance]
) -> dict[str, CloudInstance]:
    """A listing and the events' sightings together: the listing's view (tags, type,
    address), unless an event shows an instance further along."""
    merged = dict(listed)
    for instance_id, seen in events.items():
        before = merged.get(instance_id)
        if before is None or STATE_RANK.get(before.state, -1) < STATE_RANK[seen.state]:
            merged[instance_id] = seen if before is None else _further(before, seen.state)
    return merged


def _further(before: CloudInstance, state: str) -> CloudInstance:
    return CloudInstance(
        before.instance_id,
        state,
        instance_type=before.instance_type,
        availability_zone=before.availability_zone,
        private_ip=before.private_ip,
        tags=before.tags,
        state_reason=f"event: {state}",
        launch_time=before.launch_time,
        public_ip=before.public_ip,
        lifecycle=before.lifecycle,
    )
