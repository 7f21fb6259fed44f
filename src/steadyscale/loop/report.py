"""What a tick tells people: events as they happen, the tick's report and its summary
(settled? capacity met?), demand no node type can hold (said once per change), and the
progress left in the ledger for ``steadyscale status``.
"""

from __future__ import annotations

import logging
import operator
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from steadyscale.core.feasibility import Infeasible
from steadyscale.core.lifecycle import ACTIVE, STARTING, NodeRecord, Status
from steadyscale.core.reconciler import Actions
from steadyscale.core.specs import NodeTypeSpec
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import Ledger

log = logging.getLogger("steadyscale.autoscaler")

_TRANSITIONAL = frozenset({Status.TERMINATING, Status.LOST, Status.INTERRUPTED})
_STATUS_AND_TYPE = operator.attrgetter("status", "node_type")


@dataclass(frozen=True)
class Event:
    """Something a person watching the autoscaler wants to know."""

    at: float
    kind: str  # "demand", "launch", "visible", "running", "terminate", "terminated", ...
    message: str
    count: int = 0


@dataclass
class TickReport:
    started_at: float
    duration: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    demanded_bundles: int = 0
    unmet: int = 0
    infeasible: int = 0
    infeasible_demand: tuple[Infeasible, ...] = ()  # the bundles counted in ``infeasible``
    errors: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    settled: bool = False
    # All demand that fits a node type is on ready nodes (and some does fit).
    feasible_met: bool = False
    # All demand is on ready nodes: feasible_met with nothing infeasible. Demand no node
    # type can hold is never met.
    capacity_met: bool = False


class Reporter:
    """Sends each event to the tick's report, the log and the ``on_event`` callback."""

    def __init__(self, clock: Clock, on_event: Callable[[Event], None] | None = None) -> None:
        self.clock = clock
        self.on_event = on_event

    def emit(
        self,
        report: TickReport,
        kind: str,
        message: str,
        count: int = 0,
        *,
        level: int = logging.INFO,
    ) -> None:
        event = Event(self.clock.now(), kind, message, count)
        report.events.append(event)
        log.log(level, "%s: %s", kind, message)
        if self.on_event is not None:
            self.on_event(event)


def summarize(
    report: TickReport,
    actions: Actions,
    records: Mapping[str, NodeRecord],
    node_types: Mapping[str, NodeTypeSpec],
) -> None:
    """Fill in the tick's counts, and whether the demand is met and the cluster settled."""
    busy = actions.decision.busy
    # One pass over the records (there may be ten thousand), in C; it also gives the
    # tick's counts by status.
    tally = Counter(map(_STATUS_AND_TYPE, records.values()))
    counts: dict[str, int] = {}
    of_type: Counter[str] = Counter()
    for (status, node_type), n in tally.items():
        counts[status.value] = counts.get(status.value, 0) + n
        if status in ACTIVE:
            of_type[node_type] += n
    report.counts = counts
    starting = any(status in STARTING for status, _ in tally)
    transitional = starting or any(status in _TRANSITIONAL for status, _ in tally)
    busy_of_type = Counter(
        r.node_type for r in map(records.__getitem__, busy) if r.status in ACTIVE
    )
    report.feasible_met = (
        report.demanded_bundles > report.infeasible
        and actions.decision.unmet == 0
        and not starting
        and not actions.launch
    )
    report.capacity_met = report.feasible_met and report.infeasible == 0
    idle_beyond_min = any(
        of_type[name] > max(node_type.min_workers, busy_of_type[name])
        for name, node_type in node_types.items()
    )
    report.settled = (
        not transitional
        and not actions.launch
        and not actions.terminate
        and not actions.cancel
        and actions.decision.unmet == 0
        and not idle_beyond_min
        and not report.errors
    )


class InfeasibleNotice:
    """Says which demand no node type can hold when that changes, not every tick: a
    warning in the log and an event (the daemon's progress lines)."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self._said: tuple[Infeasible, ...] = ()

    def note(self, report: TickReport) -> None:
        infeasible = report.infeasible_demand
        if infeasible == self._said:
            return
        if infeasible:
            self.reporter.emit(
                report,
                "infeasible",
                f"{report.infeasible} bundle(s) no node type can hold: "
                + "; ".join(i.describe() for i in infeasible),
                report.infeasible,
                level=logging.WARNING,
            )
        else:
            self.reporter.emit(report, "infeasible", "every bundle demanded fits a node type again")
        self._said = infeasible


class Progress:
    """Where demand stands, left in the ledger for ``steadyscale status`` (another
    process): written only when it changes, so a steady cluster writes nothing."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._published: dict[str, Any] | None = None

    def publish(self, report: TickReport) -> None:
        progress = {
            "unmet": report.unmet,
            "infeasible": report.infeasible,
            "infeasible_demand": [
                {
                    "bundle": dict(i.bundle),
                    "count": i.count,
                    "cause": i.cause.value,
                    "resource": i.resource,
                    "why": i.why,
                }
                for i in report.infeasible_demand
            ],
            "feasible_met": report.feasible_met,
            "capacity_met": report.capacity_met,
        }
        if progress != self._published:
            with self.ledger.transaction():
                self.ledger.save_progress({**progress, "since": report.started_at})
            self._published = progress
