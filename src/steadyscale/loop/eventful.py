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
from steadyscale.core.lifecycle import UP, NodeRecord, Status
from steadyscale.core.reconciler import Move, Observation
from steadyscale.errors import CloudError
from steadyscale.loop.book import NodeBook
from steadyscale.loop.early import Forewarned, OnWarning, no_warning
from steadyscale.loop.events import Collected, EventConsumer
from steadyscale.loop.inbox import Inbox
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.event_metrics import EventMetrics
from steadyscale.providers.protocol import CloudProvider
from steadyscale.retries.clock import Clock
from steadyscale.store.marks import MarkKind, Marks, NodeMark


class NoEvents:
    """The seams of a loop without events."""

    def collect(self, records: Mapping[str, NodeRecord], report: TickReport) -> None:
        return None

    def listing_interval(self) -> float | None:
        return None

    def observation(
        self, observation: Observation | None, report: TickReport
    ) -> Observation | None:
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
        self,
        consumer: EventConsumer,
        forewarned: Forewarned,
        *,
        full_listing_interval: float,
        status: StatusChecks | None = None,
    ) -> None:
        self.consumer = consumer
        self.forewarned = forewarned
        self.full_listing_interval = full_listing_interval
        self.status = status
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

    def observation(
        self, observation: Observation | None, report: TickReport
    ) -> Observation | None:
        """The listing and lookups, with what the events showed; with a complete listing,
        the status checks of the running nodes too."""
        if self.status is not None and observation is not None and observation.listing_complete:
            self.forewarned.add(self.status.check(self.forewarned.records, report), report)
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
    provider: CloudProvider,
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
    status = StatusChecks(provider, marks, book.clock) if events.replace_impaired else None
    return Eventful(
        consumer,
        forewarned,
        full_listing_interval=events.full_listing_interval_seconds,
        status=status,
    )


class StatusChecks:
    """EC2's status checks of the running nodes (DescribeInstanceStatus): an impaired one is
    marked, and so replaced ahead of time like a rebalance recommendation."""

    def __init__(self, provider: CloudProvider, marks: Marks, clock: Clock) -> None:
        self.provider = provider
        self.marks = marks
        self.clock = clock

    def check(self, records: Mapping[str, NodeRecord], report: TickReport) -> list[NodeMark]:
        """The new marks of nodes whose checks say impaired (kept in the ledger)."""
        running = {r.instance_id: r for r in records.values() if r.status in UP and r.instance_id}
        if not running:
            return []
        try:
            statuses = self.provider.instance_status(sorted(running))
        except CloudError as exc:
            report.errors.append(f"status checks: {exc}")
            return []
        now = self.clock.now()
        impaired = [
            NodeMark(running[i].node_id, MarkKind.IMPAIRED, now, None, f"status:{i}")
            for i, status in statuses.items()
            if status == "impaired" and i in running
        ]
        return self.marks.add(impaired)
