"""The events EC2 and AWS Health emit for one region, as the default event bus gets them:
each event in AWS's documented shape (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time``, ``region``, ``resources``, ``detail``), and its delivery as the bus
makes it, at least once and in no set order: delayed, held back behind later events,
duplicated or lost, each drawn from the region's seeded event stream.

Every event emitted is in ground truth with what became of it (when each copy was due,
when it was handed to the targets, lost or not), and whether a listing showed its
instance when it was emitted (EC2 tells of an instance before DescribeInstances does).
Counts are exact for the whole run; the events themselves are kept in a bounded ring, as
the call log's records are, so a long soak does not grow without limit.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum
from typing import Any

from steadyscale.ec2model.event_settings import Delivery


class DetailType(StrEnum):
    """The ``detail-type`` of each event the model emits."""

    STATE_CHANGE = "EC2 Instance State-change Notification"
    SPOT_WARNING = "EC2 Spot Instance Interruption Warning"
    REBALANCE = "EC2 Instance Rebalance Recommendation"
    HEALTH = "AWS Health Event"


SOURCES = {
    DetailType.STATE_CHANGE: "aws.ec2",
    DetailType.SPOT_WARNING: "aws.ec2",
    DetailType.REBALANCE: "aws.ec2",
    DetailType.HEALTH: "aws.health",
}
RETIREMENT_CODE = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"


def retirement_detail(region: str, instance_id: str, at: float, deadline: float) -> dict[str, Any]:
    """An AWS Health scheduled-change event's detail: the instance retires at ``deadline``."""
    return {
        "eventArn": f"arn:aws:health:{region}::event/EC2/{RETIREMENT_CODE}/"
        f"{RETIREMENT_CODE}_{instance_id}_{int(at)}",
        "service": "EC2",
        "eventTypeCode": RETIREMENT_CODE,
        "eventTypeCategory": "scheduledChange",
        "eventScopeCode": "ACCOUNT_SPECIFIC",
        "eventRegion": region,
        "statusCode": "upcoming",
        "startTime": health_time(deadline),
        "lastUpdatedTime": health_time(at),
        "eventDescription": [
            {
                "language": "en_US",
                "latestDescription": "EC2 has detected degradation of the underlying "
                "hardware hosting your Amazon EC2 instance. Your instance is scheduled for "
                "retirement and will be terminated after the start time.",
            }
        ],
        "affectedEntities": [{"entityValue": instance_id}],
    }


def iso_time(at: float) -> str:
    """An event's ``time``: UTC, to the second, as EventBridge writes it."""
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_time(at: float) -> str:
    """A time in an AWS Health event's detail (``Sat, 05 Jun 2021 12:00:00 GMT``)."""
    return format_datetime(datetime.fromtimestamp(at, tz=UTC), usegmt=True)


@dataclass
class EmittedEvent:
    """One event as emitted, and what the bus did with it."""

    event_id: str
    detail_type: DetailType
    at: float
    region: str
    account: str
    instance_id: str
    resources: tuple[str, ...]
    detail: dict[str, Any]
    listed: bool  # whether a listing (DescribeInstances) showed the instance by then
    due: list[float] = field(default_factory=list)  # when each copy reaches the targets
    lost: bool = False
    duplicated: bool = False
    reordered: bool = False
    delivered: list[float] = field(default_factory=list)  # when copies were handed over

    def envelope(self) -> dict[str, Any]:
        """The event as a rule's target receives it."""
        return {
            "version": "0",
            "id": self.event_id,
            "detail-type": self.detail_type.value,
            "source": SOURCES[self.detail_type],
            "account": self.account,
            "time": iso_time(self.at),
            "region": self.region,
            "resources": list(self.resources),
            "detail": self.detail,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.envelope(),
            "emitted_at": self.at,
            "instance_id": self.instance_id,
            "listed": self.listed,
            "due": list(self.due),
            "delivered": list(self.delivered),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "reordered": self.reordered,
        }


class EventFeed:
    """The events of one region: emitted, kept as ground truth, delivered when due."""

    def __init__(
        self,
        delivery: Delivery,
        region: str,
        account: str,
        rng: random.Random,
        *,
        keep: int = 200_000,
    ) -> None:
        self.delivery = delivery
        self.region = region
        self.account = account
        self._rng = rng
        self.records: deque[EmittedEvent] = deque(maxlen=keep)
        # Exact for the whole run: emitted by detail-type, and "lost", "duplicated",
        # "reordered".
        self.counts: Counter[str] = Counter()
        self._pending: list[tuple[float, int, EmittedEvent]] = []
        self._seq = itertools.count()

    def instance_arn(self, instance_id: str) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account}:instance/{instance_id}"

    def emit(
        self,
        detail_type: DetailType,
        instance_id: str,
        detail: dict[str, Any],
        at: float,
        *,
        listed: bool,
    ) -> EmittedEvent:
        """Emit an event now (``at``) and draw its delivery: the same draws for every
        event, so one knob's change leaves the other draws where they were."""
        rng = self._rng
        resources = (
            (instance_id,)
            if detail_type is DetailType.HEALTH
            else (self.instance_arn(instance_id),)
        )
        event = EmittedEvent(
            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            detail_type=detail_type,
            at=at,
            region=self.region,
            account=self.account,
            instance_id=instance_id,
            resources=resources,
            detail=detail,
            listed=listed,
        )
        knobs = self.delivery
        delay = knobs.delay.sample(rng)
        held = knobs.reorder_delay.sample(rng)
        again = knobs.delay.sample(rng)
        event.lost = rng.random() < knobs.loss_probability
        event.reordered = rng.random() < knobs.reorder_probability
        event.duplicated = rng.random() < knobs.duplicate_probability
        if not event.lost:
            first = at + delay + (held if event.reordered else 0.0)
            event.due.append(first)
            if event.duplicated:
                event.due.append(first + again)
        for due in event.due:
            heapq.heappush(self._pending, (due, next(self._seq), event))
        self.records.append(event)
        self.counts[detail_type.value] += 1
        for fault in ("lost", "duplicated", "reordered"):
            self.counts[fault] += getattr(event, fault)
        return event

    def summary(self) -> dict[str, Any]:
        """Exact counts for the whole run."""
        by_type = {t.value: self.counts[t.value] for t in DetailType}
        return {
            "total": sum(by_type.values()),
            "by_type": by_type,
            **{fault: self.counts[fault] for fault in ("lost", "duplicated", "reordered")},
            "undelivered": self.undelivered(),
        }

    def due(self, now: float) -> list[EmittedEvent]:
        """The copies due by ``now``, in the order they reach the targets (a duplicate
        appears twice), each marked delivered now."""
        ready: list[EmittedEvent] = []
        while self._pending and self._pending[0][0] <= now:
            _, _, event = heapq.heappop(self._pending)
            event.delivered.append(now)
            ready.append(event)
        return ready

    def undelivered(self) -> int:
        """Copies still on their way."""
        return len(self._pending)
