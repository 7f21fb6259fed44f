"""What EC2's events change in a tick, in one place the tick calls at its seams: the
consumer's sightings merged into the observation (the passive path), the warned nodes out
of the scheduler's view, the nodes replaced ahead of time among the retiring ones, and the
messages deleted once the tick's moves are in the ledger. ``NoEvents`` is the same seams
doing nothing, for a config without an ``events`` block: the loop polls as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from steadyscale.config import ClusterConfig
from steadyscale.core.changes import Retiring
from steadyscale.core.events import merge
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.core.reconciler import Move, Observation
from steadyscale.loop.book import NodeBook
from steadyscale.loop.early import Forewarned, OnWarning, no_warning
from steadyscale.loop.events import Collected, EventConsumer
from steadyscale.loop.inbox import Inbox
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.event_metrics import EventMetrics
from steadyscale.store.marks import Marks


class NoEvents:
    """The seams of a loop without events."""

    def collect(self, records: Mapping[str, NodeRecord], report: TickReport) -> None:
        return None

    def listing_interval(self) -> float | None:
        return None

    def observation(self, observation: Observation | None) -> Observation | None:
        return observation

    def warned(self) -> frozenset[str]:
        return frozenset()

    def retiring(self, base: Retiring) -> Retiring:
        return base

    def overdue(self, now: float) -> dict[str, str]:
        return {}

    def moved(self, moves: Sequence[Move], report: TickReport) -> None:
        return None

    def forget_finished(self) -> None:
        return None

    def close(self) -> None:
        return None


class Eventful(NoEvents):
    """The seams of a loop that consumes EC2's events."""

    def __init__(
        self, consumer: EventConsumer, forewarned: Forewarned, *, full_listing_interval: float
    ) -> None:
        self.consumer = consumer
        self.forewarned = forewarned
        self.full_listing_interval = full_listing_interval
        self._collected = Collected()

    def collect(self, records: Mapping[str, NodeRecord], report: TickReport) -> None:
        """This tick's events: marks kept (and acted on), sightings kept for the observation."""
        by_instance = {r.instance_id: r for r in records.values() if r.instance_id}
        awaiting = any(r.status is Status.REQUESTED for r in records.values())
        self._collected = self.consumer.collect(by_instance, awaiting=awaiting, report=report)
        self.forewarned.add(self._collected.marks, report)

    def listing_interval(self) -> float | None:
        """While events flow the full listing runs less often; else as without events."""
        return self.full_listing_interval if self.consumer.flowing() else None

    def observation(self, observation: Observation | None) -> Observation | None:
        """The listing and lookups, with what the events showed."""
        shown = self._collected.sightings
        if not shown:
            return observation
        if observation is None:
            return Observation(instances=dict(shown), listing_complete=False, asked=frozenset())
        return Observation(
            instances=merge(observation.instances, shown),
            listing_complete=observation.listing_complete,
            asked=observation.asked,
        )

    def warned(self) -> frozenset[str]:
        return self.forewarned.warned()

    def retiring(self, base: Retiring) -> Retiring:
        return self.forewarned.retiring(base)

    def overdue(self, now: float) -> dict[str, str]:
        return self.forewarned.overdue(now)

    def moved(self, moves: Sequence[Move], report: TickReport) -> None:
        """After the tick's moves are written: interruptions counted, messages deleted."""
        self.forewarned.moved(moves, report)
        self.consumer.settle(report)
        self._collected = Collected()

    def forget_finished(self) -> None:
        self.forewarned.forget_finished()

    def close(self) -> None:
        self.consumer.close()


def events_for(
    config: ClusterConfig,
    inbox: Inbox | None,
    book: NodeBook,
    offerings: OfferingBook,
    reporter: Reporter,
    *,
    metrics: EventMetrics,
    on_warning: OnWarning = no_warning,
) -> NoEvents:
    """The seams for ``config``: events consumed when it has an ``events`` block and the
    caller gave the inbox its queue feeds, else none."""
    events = config.events
    if events is None or inbox is None:
        return NoEvents()
    marks = Marks(book.ledger.store)
    # An unknown id may be ours until a launch answer names it: a few ticks at most.
    hold = max(60.0, 6 * config.loop_interval_seconds)
    consumer = EventConsumer(events, inbox, marks, metrics, book.clock, hold_seconds=hold)
    forewarned = Forewarned(
        events,
        book.records,
        marks,
        offerings=offerings,
        reporter=reporter,
        metrics=metrics,
        grace_seconds=config.visibility_timeout_seconds,
        on_warning=on_warning,
    )
    return Eventful(
        consumer, forewarned, full_listing_interval=events.full_listing_interval_seconds
    )
