"""Acting early on what EC2's events announce, from the marks the ledger keeps
(``store.marks``).

An interruption warning takes the node out of the scheduler's view at once (its
replacement launches this tick, in another pool: the warned node's spot pool is set aside)
and calls ``on_warning`` (the drain's seam); EC2 then takes the node, and a node it has not
taken well past the deadline is terminated by us. A rebalance recommendation, a scheduled
retirement or failing status checks make a node *retire* as a config change retires one:
a replacement launches, and the node is terminated once ready nodes hold its demand (never
capacity below what demand needs), at most ``max_rebalance_replacements`` at once per node
type, the nearest deadline first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence

from steadyscale.config import EventsConfig
from steadyscale.core.changes import Retiring
from steadyscale.core.lifecycle import ACTIVE, TERMINAL, UP, NodeRecord, Status
from steadyscale.core.reconciler import Move
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.event_metrics import EventMetrics
from steadyscale.store.marks import REPLACING, MarkKind, Marks, NodeMark

OnWarning = Callable[[Sequence[NodeRecord], TickReport], None]
# A warned node is held (and may be overdue) while it is active or draining: a drain of
# a warned node never terminates it (EC2 does), so we must once EC2 has not.
_HELD = ACTIVE | {Status.DRAINING}

_WHY: Mapping[MarkKind, str] = {
    MarkKind.REBALANCE: "EC2 recommends rebalancing it (rebalance recommendation)",
    MarkKind.RETIREMENT: "EC2 scheduled its retirement",
    MarkKind.IMPAIRED: "EC2's status checks say it is impaired",
}


def no_warning(records: Sequence[NodeRecord], report: TickReport) -> None:
    """The drain seam until a drain exists: nothing to run before EC2 takes the node."""


class Forewarned:
    """The marks of live nodes, and what the tick does about them."""

    def __init__(
        self,
        config: EventsConfig,
        records: Mapping[str, NodeRecord],
        marks: Marks,
        *,
        offerings: OfferingBook,
        reporter: Reporter,
        metrics: EventMetrics,
        grace_seconds: float,
        on_warning: OnWarning = no_warning,
    ) -> None:
        self.config = config
        self.records = records
        self.marks = marks
        self.offerings = offerings
        self.reporter = reporter
        self.metrics = metrics
        self.grace_seconds = grace_seconds
        self.on_warning = on_warning
        self._marks: dict[tuple[str, MarkKind], NodeMark] = {
            (m.node_id, m.kind): m for m in marks.all()
        }
        # Warned node id -> the node that replaces it, once one of its type is ready.
        self._credits: dict[str, str] = {}

    def add(self, marks: Sequence[NodeMark], report: TickReport) -> None:
        """New marks (already in the ledger): a warned node's pool is set aside and its
        drain seam called; every mark is told."""
        warned: list[NodeRecord] = []
        for mark in marks:
            self._marks[(mark.node_id, mark.kind)] = mark
            record = self.records.get(mark.node_id)
            if record is None:
                continue
            if mark.kind is MarkKind.WARNED:
                warned.append(record)
                self.offerings.warned(record.node_type, record.request_id, report)
                self.reporter.emit(
                    report,
                    "warned",
                    f"{record.node_id} ({record.instance_id}): EC2 will reclaim it "
                    f"(spot interruption warning, {mark.deadline or 0:.0f}); replacing it now",
                    1,
                )
            else:
                self.reporter.emit(
                    report,
                    "replacing",
                    f"{record.node_id} ({record.instance_id}): {_WHY[mark.kind]}; "
                    "replaced ahead of time",
                    1,
                )
        if warned:
            self.on_warning(warned, report)

    def warned(self) -> frozenset[str]:
        """Live nodes under an interruption warning: out of the scheduler's view."""
        return frozenset(
            node_id
            for (node_id, kind) in self._marks
            if kind is MarkKind.WARNED and self._live(node_id)
        )

    def overdue(self, now: float) -> dict[str, str]:
        """Warned nodes EC2 has not taken well past its deadline: terminated by us (they
        hold no demand any more, and would otherwise be kept for nothing)."""
        late: dict[str, str] = {}
        for (node_id, kind), mark in self._marks.items():
            record = self.records.get(node_id)
            if kind is not MarkKind.WARNED or record is None or record.status not in _HELD:
                continue
            deadline = mark.deadline if mark.deadline is not None else mark.at
            if now > deadline + self.grace_seconds:
                late[node_id] = (
                    f"warned of a spot interruption at {mark.at:.0f} and still not reclaimed "
                    f"{now - deadline:.0f}s after the deadline"
                )
        return late

    def retiring(self, base: Retiring) -> Retiring:
        """``base`` (a config change's retiring nodes) with the nodes being replaced ahead of
        time: per node type the first ``max_rebalance_replacements`` running ones, nearest
        deadline first."""
        budget = self.config.max_rebalance_replacements
        if budget <= 0:
            return base
        warned = self.warned()
        queue: dict[str, list[NodeMark]] = defaultdict(list)
        for (node_id, kind), mark in self._marks.items():
            record = self.records.get(node_id)
            if (
                kind in REPLACING
                and record is not None
                and record.status in UP
                and node_id not in warned
                and node_id not in base.reasons
            ):
                queue[record.node_type].append(mark)
        ours: dict[str, str] = {}
        for marks in queue.values():
            marks.sort(key=lambda m: (math.inf if m.deadline is None else m.deadline, m.at))
            chosen = list(dict.fromkeys(m.node_id for m in marks))[:budget]
            for mark in marks:
                if mark.node_id in chosen and mark.node_id not in ours:
                    ours[mark.node_id] = _WHY[mark.kind]
        if not ours:
            return base
        surge = (base.max_surge if base.reasons else 0) + len(ours)
        return Retiring({**base.reasons, **ours}, base.resources, surge, base.offers)

    def moved(self, moves: Iterable[Move], report: TickReport) -> None:
        """Interruptions counted warned or not, and whether a replacement was ready first."""
        self._credit()
        for move in moves:
            if move.status is not Status.INTERRUPTED:
                continue
            warned = (move.node_id, MarkKind.WARNED) in self._marks
            self.metrics.interruptions.labels("yes" if warned else "no").inc()
            if warned and move.node_id in self._credits:
                self.metrics.replaced_before_reclaim.inc()

    def _credit(self) -> None:
        """Each warned node still up is credited the first ready node of its type that
        became ready after the warning and replaces no other."""
        used = set(self._credits.values())
        for (node_id, kind), mark in self._marks.items():
            record = self.records.get(node_id)
            if kind is not MarkKind.WARNED or node_id in self._credits or record is None:
                continue
            if record.status not in _HELD:
                continue
            for other in self.records.values():
                if (
                    other.status is Status.READY
                    and other.node_type == record.node_type
                    and other.node_id not in used
                    and other.node_id != node_id
                    and other.created_at >= mark.at
                ):
                    self._credits[node_id] = other.node_id
                    used.add(other.node_id)
                    break

    def forget_finished(self) -> None:
        """Marks of nodes that finished (or left memory) are dropped, here and in the
        ledger."""
        gone = {
            node_id
            for (node_id, _) in self._marks
            if node_id not in self.records or self.records[node_id].status in TERMINAL
        }
        if not gone:
            return
        self.marks.forget(gone)
        self._marks = {k: m for k, m in self._marks.items() if k[0] not in gone}
        self._credits = {k: v for k, v in self._credits.items() if k not in gone}

    def _live(self, node_id: str) -> bool:
        record = self.records.get(node_id)
        return record is not None and record.status in _HELD
