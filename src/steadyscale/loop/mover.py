"""Applies the reconciler's moves to the node book: statuses and fields in one write, the
lags they complete to the metrics, events for people; an interruption is counted and sets
its spot pool aside."""

from __future__ import annotations

from collections.abc import Sequence

from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.core.reconciler import Move
from steadyscale.loop.book import Entries, NodeBook
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import Clock

# Statuses whose arrivals are summed up in one event a tick, with its label.
_SUMMED = (
    (Status.PENDING, "visible"),
    (Status.RUNNING, "running"),
    (Status.READY, "ready"),
    (Status.TERMINATED, "terminated"),
)
_ONE_BY_ONE = frozenset({Status.LOST, Status.INTERRUPTED})


class Mover:
    """Applies moves; counts the interruptions EC2 made."""

    def __init__(
        self,
        book: NodeBook,
        offerings: OfferingBook,
        reporter: Reporter,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.book = book
        self.offerings = offerings
        self.reporter = reporter
        self.metrics = metrics
        self.clock = clock
        self.interruptions = 0

    def apply(self, moves: Sequence[Move], report: TickReport) -> None:
        """Every record a move changes is written in one transaction; one whose update is
        memory-only (a sighting) is not written."""
        if not moves:
            return
        records = self.book.records
        changed: list[NodeRecord] = []
        entries: Entries = []
        tally: dict[Status, int] = {}
        for move in moves:
            record = records[move.node_id]
            update = move.update
            if record.first_seen_at is None and update.first_seen_at is not None:
                self.metrics.first_seen(record, self.clock.now())
            if move.status is not None and move.status is not record.status:
                self.book.move(record, move.status, move.reason, entries, update)
                self.metrics.moved(record, move.status, self.clock.now())
                tally[move.status] = tally.get(move.status, 0) + 1
                if move.status in _ONE_BY_ONE:
                    self._one_by_one(record, move.status, move.reason, report)
            else:
                record.apply(update)
                if move.status is None and update.memory_only:
                    continue  # only the time it was last seen: not worth a write
            changed.append(record)
        if changed:
            self.book.save(changed, entries)
        for status, label in _SUMMED:
            if tally.get(status):
                self.reporter.emit(report, label, f"{tally[status]} node(s) {label}", tally[status])

    def _one_by_one(
        self, record: NodeRecord, status: Status, reason: str, report: TickReport
    ) -> None:
        """A node LOST or INTERRUPTED: an event of its own; an interruption also sets the
        spot pool its launch went to aside."""
        self.reporter.emit(
            report, status.value, f"{record.node_id} ({record.instance_id}): {reason}", 1
        )
        if status is Status.INTERRUPTED:
            self.interruptions += 1
            self.offerings.interrupted(record.node_type, record.request_id, report)
