"""Retirement: the live nodes a config change replaces (invariant I9: a config change never
takes capacity in use).

When the loop starts, or is given a new config, the config is planned against the ledger
(``core.changes``): renamed node types' nodes are re-labelled, in the ledger and in memory,
and the retiring nodes are remembered with why they retire. The set is computed once and
only shrinks as its nodes finish, so a tick costs nothing in proportion to the ledger.
The scheduler keeps a retiring node while demand sits on it that ready replacements cannot
hold yet (make before break), or while its workload reports it busy; once it lets one go,
it is terminated through its drain (``loop.drain``), as every node is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from steadyscale.config import ClusterConfig
from steadyscale.core.changes import NOT_RETIRING, ChangePlan, Fate, Retiring, resolve_surge
from steadyscale.core.lifecycle import ACTIVE
from steadyscale.loop.book import NodeBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.store.changes import apply_plan, change_plan


class Retirement:
    """The retiring nodes (node id -> why), what a node of a removed type offers (and a
    node whose type offers something else now), and the surge resolved for this change."""

    def __init__(self, book: NodeBook, reporter: Reporter):
        self.book = book
        self.reporter = reporter
        self.reasons: dict[str, str] = {}
        self.resources: dict[str, Mapping[str, float]] = {}
        self.offers: Mapping[str, Mapping[str, float]] = {}
        self.max_surge = 1
        self._notes: list[tuple[str, str, int]] = []  # told with the next tick's events

    def start(self, config: ClusterConfig) -> None:
        """Plan ``config`` against the ledger's live nodes and apply it: renamed types'
        nodes re-labelled and the node types kept (one transaction), the retiring nodes
        remembered."""
        node_types = config.available_node_types
        plan = change_plan(self.book.ledger, node_types, self.book.active())
        apply_plan(self.book.ledger, plan)
        self.book.relabel(plan.renames)
        self.reasons = plan.retiring
        self.resources = {
            name: definition.resources
            for name, definition in plan.snapshot.items()
            if name not in node_types
        }
        self.offers = plan.offers
        self.max_surge = resolve_surge(config.max_surge, len(self.reasons))
        self._notes = _notes(plan, self.max_surge)

    def retiring(self, report: TickReport) -> Retiring:
        """The retiring nodes for this tick's decision (those that finished are let go of);
        the change's notes join the first tick's events."""
        for kind, message, count in self._notes:
            self.reporter.emit(report, kind, message, count)
        self._notes = []
        if not self.reasons:
            return NOT_RETIRING
        records = self.book.records
        for node_id in [n for n in self.reasons if n not in records]:
            del self.reasons[node_id]
        for node_id in [n for n in self.reasons if records[n].status not in ACTIVE]:
            del self.reasons[node_id]
        return Retiring(self.reasons, self.resources, self.max_surge, self.offers)

    def release(
        self, terminate: Sequence[str], retired: Mapping[str, str], report: TickReport
    ) -> list[str]:
        """The nodes to terminate, the retired ones among them told (they go through their
        drain with the others)."""
        if not retired:
            return list(terminate)
        gone = Counter(retired.values())
        left = sum(1 for n in self.reasons if n not in retired)
        for why, count in gone.items():
            self.reporter.emit(
                report, "retired", f"{count} node(s) {why} ({left} still retiring)", count
            )
        return list(terminate)


def _notes(plan: ChangePlan, max_surge: int) -> list[tuple[str, str, int]]:
    """What the change does to live nodes, one event per kind of change."""
    notes: list[tuple[str, str, int]] = []
    retiring = Counter[tuple[str, str]]()
    for fate, count in plan.groups():
        if fate.fate is Fate.RELABELLED:
            notes.append(
                (
                    "relabel",
                    f"{count} node(s) of node type {fate.node_type} re-labelled "
                    f"{fate.new_type} (same node_config and resources): kept, not replaced",
                    count,
                )
            )
        elif fate.fate is Fate.RETIRING:
            retiring[(fate.new_type, fate.reason)] += count
    for (node_type, reason), count in retiring.items():
        notes.append(
            (
                "retiring",
                f"{count} node(s) of node type {node_type} retiring: {reason}; each is "
                "terminated once ready nodes of a configured type hold its demand "
                f"(at most {max_surge} replacement(s) starting at once)",
                count,
            )
        )
    return notes
