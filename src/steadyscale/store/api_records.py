"""What the HTTP API keeps in the ledger beside the demand: the first answer to each
idempotency key (a repeat gets it again and changes nothing), and the audit log of every
mutation (who by token name or fingerprint, never the token; what; when)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from steadyscale.core.lifecycle import TERMINAL
from steadyscale.store.storage import Storage

API_TABLES = ("demand_entries", "idempotency_keys", "audit_log")
# An idempotency key is remembered this long (seconds): a client retries within minutes.
KEEP_KEYS_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class KeptAnswer:
    """The first answer given under an idempotency key, and what it was the answer to."""

    request_hash: str
    status: int
    answer: Any


@dataclass(frozen=True)
class AuditEntry:
    at: float
    who: str
    action: str
    target: str
    detail: Any


def kept_answer(db: Storage, who: str, key: str) -> KeptAnswer | None:
    row = db.row(
        "SELECT request_hash, status, answer FROM idempotency_keys WHERE who = ? AND key = ?",
        (who, key),
    )
    if row is None:
        return None
    return KeptAnswer(row["request_hash"], int(row["status"]), json.loads(row["answer"]))


def keep_answer(
    db: Storage, *, who: str, key: str, request_hash: str, status: int, answer: Any, at: float
) -> None:
    """Remember the answer to ``key`` (inside the mutation's transaction); keys older than
    ``KEEP_KEYS_SECONDS`` are forgotten."""
    db.execute("DELETE FROM idempotency_keys WHERE at < ?", (at - KEEP_KEYS_SECONDS,))
    db.execute(
        "INSERT INTO idempotency_keys (who, key, request_hash, status, answer, at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (who, key) DO NOTHING",
        (who, key, request_hash, status, json.dumps(answer), at),
    )


def audit(db: Storage, *, who: str, action: str, target: str, detail: Any, at: float) -> None:
    db.execute(
        "INSERT INTO audit_log (at, who, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (at, who, action, target, json.dumps(detail, sort_keys=True)),
    )


def audit_log(db: Storage, limit: int = 100) -> list[AuditEntry]:
    """The latest ``limit`` mutations, oldest first."""
    rows = db.rows(
        "SELECT at, who, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [
        AuditEntry(r["at"], r["who"], r["action"], r["target"], json.loads(r["detail"]))
        for r in reversed(rows)
    ]


@dataclass(frozen=True)
class Move:
    """One node's state change as the ledger recorded it, for the API's event stream."""

    id: int
    node_id: str
    node_type: str | None
    instance_id: str | None
    status: str
    at: float
    reason: str


def last_move_id(db: Storage) -> int:
    row = db.row("SELECT MAX(id) AS last FROM transitions")
    return int(row["last"]) if row is not None and row["last"] is not None else 0


def moves_after(db: Storage, after: int, limit: int = 1000) -> list[Move]:
    """Node state changes recorded after ``after`` (a transitions id), oldest first."""
    rows = db.rows(
        "SELECT t.id, t.node_id, n.node_type, n.instance_id, t.status, t.at, t.reason "
        "FROM transitions t LEFT JOIN nodes n ON n.node_id = t.node_id "
        "WHERE t.id > ? ORDER BY t.id LIMIT ?",
        (after, limit),
    )
    return [
        Move(
            id=int(r["id"]),
            node_id=r["node_id"],
            node_type=r["node_type"],
            instance_id=r["instance_id"],
            status=r["status"],
            at=float(r["at"]),
            reason=r["reason"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class NodeSelection:
    """Which nodes the API lists: the live ones, and with ``finished`` the finished ones
    too; of those, with ``finished_after``, only the ones active since then (launched,
    seen, or asked to terminate at or after it), so a ledger's years of finished nodes are
    not read at every look."""

    finished: bool = False
    finished_after: float | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition on the nodes table (alias ``n``), and its parameters."""
        ended = [s.value for s in TERMINAL]
        live = f"n.status NOT IN ({', '.join('?' for _ in ended)})"
        if not self.finished:
            return f" WHERE {live}", ended
        if self.finished_after is None:
            return "", []
        since = " OR ".join(f"n.{c} >= ?" for c in _ACTIVE_AT)
        return f" WHERE ({live} OR {since})", [*ended, *[self.finished_after] * len(_ACTIVE_AT)]


_ACTIVE_AT = ("created_at", "launched_at", "last_seen_at", "terminate_requested_at")


def histories(db: Storage, selected: NodeSelection) -> dict[str, list[tuple[str, float, str]]]:
    """Every move of the ``selected`` nodes, by node id, oldest first: one query, not one
    per node."""
    where, params = selected.where()
    query = (
        "SELECT t.node_id, t.status, t.at, t.reason FROM transitions t "
        "JOIN nodes n ON n.node_id = t.node_id" + where
    )
    found: dict[str, list[tuple[str, float, str]]] = {}
    for row in db.rows(query + " ORDER BY t.id", params):
        found.setdefault(row["node_id"], []).append((row["status"], row["at"], row["reason"]))
    return found


def last_moves(db: Storage, selected: NodeSelection) -> dict[str, list[tuple[str, float, str]]]:
    """Each ``selected`` node's last move only, by node id (its index finds it: no scan of
    every move)."""
    where, params = selected.where()
    query = (
        "SELECT n.node_id, t.status, t.at, t.reason FROM nodes n JOIN transitions t ON t.id = "
        "(SELECT MAX(x.id) FROM transitions x WHERE x.node_id = n.node_id)" + where
    )
    return {
        row["node_id"]: [(row["status"], row["at"], row["reason"])]
        for row in db.rows(query, params)
    }


_NODE_COLUMNS = (
    "node_id",
    "instance_id",
    "node_type",
    "status",
    "instance_type",
    "availability_zone",
    "private_ip",
    "hourly_price",
)


def node_rows(db: Storage, selected: NodeSelection) -> list[dict[str, Any]]:
    """What the API lists of each ``selected`` node, as the ledger has it, in the ledger's
    order (lean: no record objects for a thousand nodes)."""
    where, params = selected.where()
    query = f"SELECT {', '.join('n.' + c for c in _NODE_COLUMNS)} FROM nodes n" + where
    rows = db.rows(query + " ORDER BY created_at, node_id", params)
    return [
        dict(zip(_NODE_COLUMNS, tuple(row[c] for c in _NODE_COLUMNS), strict=True)) for row in rows
    ]
