"""What EC2's events said of a node and the loop acts on across ticks and restarts: an
interruption warning (the node is out of the scheduler's view), and the reasons to replace
a node ahead of time (a rebalance recommendation, a scheduled retirement, failing status
checks). One mark per (node, kind): the first event of a kind is kept, and a duplicate or
a redelivered message finds its mark already there, so its effect happens once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from steadyscale.store.storage import Storage


class MarkKind(StrEnum):
    WARNED = "warned"  # a spot interruption warning: EC2 takes it at the deadline
    REBALANCE = "rebalance"  # a rebalance recommendation: replace it ahead of time
    RETIREMENT = "retirement"  # a scheduled retirement: replace it before the deadline
    IMPAIRED = "impaired"  # EC2's status checks fail: replace it


REPLACING = frozenset({MarkKind.REBALANCE, MarkKind.RETIREMENT, MarkKind.IMPAIRED})


@dataclass(frozen=True)
class NodeMark:
    node_id: str
    kind: MarkKind
    at: float  # when the event happened (EC2's time)
    deadline: float | None  # when EC2 acts, if it says
    event_id: str  # the event that set it (a status check's: "status:<instance id>")


# The table, created by the ledger's migration 3.
TABLE = """
CREATE TABLE IF NOT EXISTS node_marks (
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at REAL NOT NULL,
    deadline REAL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (node_id, kind)
)
"""


class Marks:
    """The marks in a ledger's storage (``Ledger.store``)."""

    def __init__(self, store: Storage) -> None:
        self._db = store

    def add(self, marks: Sequence[NodeMark]) -> list[NodeMark]:
        """Keep ``marks``, in one transaction; those new (a node's kind already marked keeps
        its first mark)."""
        if not marks:
            return []
        with self._db.transaction():
            have = {(m.node_id, m.kind) for m in self.all()}
            new = [m for m in dict.fromkeys(marks) if (m.node_id, m.kind) not in have]
            self._db.executemany(
                "INSERT INTO node_marks (node_id, kind, at, deadline, event_id) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (node_id, kind) DO NOTHING",
                [(m.node_id, m.kind.value, m.at, m.deadline, m.event_id) for m in new],
            )
        return new

    def all(self) -> list[NodeMark]:
        return [
            NodeMark(r["node_id"], MarkKind(r["kind"]), r["at"], r["deadline"], r["event_id"])
            for r in self._db.rows(
                "SELECT node_id, kind, at, deadline, event_id FROM node_marks ORDER BY at"
            )
        ]

    def forget(self, node_ids: Iterable[str]) -> None:
        """Drop the marks of nodes that finished."""
        ids = [(n,) for n in node_ids]
        if ids:
            with self._db.transaction():
                self._db.executemany("DELETE FROM node_marks WHERE node_id = ?", ids)
