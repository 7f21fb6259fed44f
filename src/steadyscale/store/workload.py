"""What the workload tells the ledger: per node, whether it is busy (usage reports with a
time to live), and which draining nodes it has let go (drain acks). ``Ledger`` takes these
methods from ``WorkloadLedger``; the loop reads ``usage(now)`` once a tick.

A report or an ack names a node by its node id or its instance id. A report naming a node
the ledger does not know (or knows only as finished) is refused whole with
``UnknownNodeError``, nothing written: the API answers it with a 404.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from steadyscale.core.lifecycle import TERMINAL, Status
from steadyscale.store.errors import LedgerError
from steadyscale.store.storage import Row, Storage

# The tables of migration 3 (``ledger_schema``).
WORKLOAD_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    node_id TEXT PRIMARY KEY,
    busy INTEGER NOT NULL,
    bundles TEXT NOT NULL,
    reported_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    idle_since REAL,
    reporter TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drains (
    node_id TEXT PRIMARY KEY,
    asked_by TEXT,
    asked_at REAL,
    acked_by TEXT,
    acked_at REAL
);
"""
WORKLOAD_TABLES = ("usage", "drains")

# Enough ids per query to keep well under either backend's limit on parameters.
_CHUNK = 400


class UnknownNodeError(LedgerError):
    """A usage report or a drain named nodes the ledger has no live node for (by node id or
    instance id). Nothing was written. ``nodes``: the names as given."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = tuple(nodes)
        shown = ", ".join(self.nodes[:5]) + (" ..." if len(self.nodes) > 5 else "")
        super().__init__(
            f"no live node {shown}: name a node by the node id or instance id that "
            "the node list shows"
        )


@dataclass(frozen=True, kw_only=True)
class UsageReport:
    """What a workload runs on one node (``node``: node id or instance id), valid for
    ``ttl_seconds``: ``busy`` (it runs something the workload wants to keep) and, if it
    says, the ``bundles`` it runs. ``reporter`` names the workload."""

    node: str
    busy: bool
    bundles: tuple[dict[str, float], ...] = ()
    ttl_seconds: float
    reporter: str

    def __post_init__(self) -> None:
        if not self.node:
            raise ValueError("a usage report needs the node it is about")
        if not (math.isfinite(self.ttl_seconds) and self.ttl_seconds > 0):
            raise ValueError(f"ttl_seconds must be a positive number, not {self.ttl_seconds}")


@dataclass(frozen=True)
class UsageState:
    """A node's latest usage report still within its time to live. ``idle_since``: since
    when its reports have said idle without a break (None while busy)."""

    busy: bool
    bundles: tuple[dict[str, float], ...]
    reported_at: float
    expires_at: float
    idle_since: float | None
    reporter: str


_SAVE_USAGE = (
    "INSERT INTO usage (node_id, busy, bundles, reported_at, expires_at, idle_since, reporter) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET busy = excluded.busy, "
    "bundles = excluded.bundles, reported_at = excluded.reported_at, "
    "expires_at = excluded.expires_at, idle_since = excluded.idle_since, "
    "reporter = excluded.reporter"
)
_FINISHED = tuple(s.value for s in TERMINAL)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class WorkloadLedger:
    """The ledger's workload tables; mixed into ``Ledger``, which gives ``store`` and
    ``transaction``."""

    @property
    def store(self) -> Storage:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def resolve_nodes(self, names: Iterable[str]) -> dict[str, tuple[str, Status]]:
        """Each name (node id or instance id) of a live node: (node id, status)."""
        wanted = sorted(set(names))
        found: dict[str, tuple[str, Status]] = {}
        finished = ", ".join("?" for _ in _FINISHED)
        for chunk in _chunks(wanted):
            marks = ", ".join("?" for _ in chunk)
            rows = self.store.rows(
                f"SELECT node_id, instance_id, status FROM nodes WHERE (node_id IN ({marks}) "
                f"OR instance_id IN ({marks})) AND status NOT IN ({finished})",
                [*chunk, *chunk, *_FINISHED],
            )
            for row in rows:
                value = (str(row["node_id"]), Status(row["status"]))
                for name in (row["node_id"], row["instance_id"]):
                    if name is not None:
                        found[str(name)] = value
        return {name: found[name] for name in wanted if name in found}

    def report_usage(self, reports: Sequence[UsageReport], at: float) -> None:
        """Record ``reports`` made at ``at``, all or none: raises ``UnknownNodeError`` (a
        ``LedgerError``; the API's 404) when one names no live node. A node reported idle
        again keeps the time its idleness began; a later report for a node replaces the
        earlier one, the last of one batch wins."""
        with self.transaction():
            known = self.resolve_nodes(r.node for r in reports)
            unknown = [r.node for r in reports if r.node not in known]
            if unknown:
                raise UnknownNodeError(list(dict.fromkeys(unknown)))
            latest = {known[r.node][0]: r for r in reports}
            before = self._usage_rows(sorted(latest), at)
            rows = []
            for node_id, report in latest.items():
                previous = before.get(node_id)
                idle_since: float | None = None
                if not report.busy:
                    kept = previous is not None and not previous.busy
                    idle_since = previous.idle_since if kept and previous else at
                rows.append(
                    (
                        node_id,
                        int(report.busy),
                        json.dumps([dict(b) for b in report.bundles], sort_keys=True),
                        at,
                        at + report.ttl_seconds,
                        idle_since,
                        report.reporter,
                    )
                )
            # Expired reports are ignored; forgetting them here keeps the table to live nodes.
            self.store.execute("DELETE FROM usage WHERE expires_at <= ?", (at,))
            self.store.executemany(_SAVE_USAGE, rows)

    def _usage_rows(self, node_ids: Sequence[str], now: float) -> dict[str, UsageState]:
        found: dict[str, UsageState] = {}
        for chunk in _chunks(node_ids):
            marks = ", ".join("?" for _ in chunk)
            rows = self.store.rows(
                f"SELECT * FROM usage WHERE node_id IN ({marks}) AND expires_at > ?",
                [*chunk, now],
            )
            found.update((str(r["node_id"]), _state(r)) for r in rows)
        return found

    def usage(self, now: float) -> dict[str, UsageState]:
        """The usage of every node whose latest report is still within its TTL at ``now``,
        by node id."""
        rows = self.store.rows("SELECT * FROM usage WHERE expires_at > ?", (now,))
        return {str(r["node_id"]): _state(r) for r in rows}

    def ask_drain(self, node: str, by: str, at: float) -> str:
        """Ask that a live running node be drained and terminated (the API's
        ``POST /nodes/{node}/drain``): returns its node id, or raises ``UnknownNodeError``
        (the API's 404). The loop starts the drain at its next tick."""
        with self.transaction():
            known = self.resolve_nodes([node])
            if node not in known:
                raise UnknownNodeError([node])
            node_id = known[node][0]
            self.store.execute(
                "INSERT INTO drains (node_id, asked_by, asked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (node_id) DO UPDATE SET asked_by = excluded.asked_by, "
                "asked_at = excluded.asked_at",
                (node_id, by, at),
            )
            return node_id

    def drain_asks(self) -> dict[str, float]:
        """Nodes asked to drain (``ask_drain``) that are not draining or finished yet."""
        rows = self.store.rows(
            "SELECT d.node_id, d.asked_at FROM drains d JOIN nodes n ON n.node_id = d.node_id "
            "WHERE d.asked_at IS NOT NULL AND n.status IN (?, ?)",
            (Status.RUNNING.value, Status.READY.value),
        )
        return {str(r["node_id"]): float(r["asked_at"]) for r in rows}

    def ack_drain(self, node: str, by: str, at: float) -> bool:
        """The workload has let go of a draining node (node id or instance id): True, or
        False when no such node is draining (the API's 404; nothing written)."""
        with self.transaction():
            known = self.resolve_nodes([node])
            if node not in known or known[node][1] is not Status.DRAINING:
                return False
            self.store.execute(
                "INSERT INTO drains (node_id, acked_by, acked_at) VALUES (?, ?, ?) "
                "ON CONFLICT (node_id) DO UPDATE SET acked_by = excluded.acked_by, "
                "acked_at = excluded.acked_at",
                (known[node][0], by, at),
            )
            return True

    def drains_started(self) -> dict[str, tuple[float, str]]:
        """When each draining node went draining, and the reason of that move, by node id
        (a restart resumes its drain from then, not from scratch)."""
        rows = self.store.rows(
            "SELECT t.node_id, t.at, t.reason FROM transitions t "
            "JOIN nodes n ON n.node_id = t.node_id WHERE n.status = ? AND t.status = ? "
            "ORDER BY t.id",
            (Status.DRAINING.value, Status.DRAINING.value),
        )
        return {str(r["node_id"]): (float(r["at"]), str(r["reason"])) for r in rows}

    def drain_acks(self) -> dict[str, float]:
        """When each draining node was acked, by node id."""
        rows = self.store.rows(
            "SELECT d.node_id, d.acked_at FROM drains d JOIN nodes n ON n.node_id = d.node_id "
            "WHERE d.acked_at IS NOT NULL AND n.status = ?",
            (Status.DRAINING.value,),
        )
        return {str(r["node_id"]): float(r["acked_at"]) for r in rows}


def _state(row: Row) -> UsageState:
    idle_since = row["idle_since"]
    return UsageState(
        busy=bool(row["busy"]),
        bundles=tuple(dict(b) for b in json.loads(row["bundles"])),
        reported_at=float(row["reported_at"]),
        expires_at=float(row["expires_at"]),
        idle_since=None if idle_since is None else float(idle_since),
        reporter=str(row["reporter"]),
    )
