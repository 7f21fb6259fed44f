"""The durable ledger (SQLite, WAL): demand, launch requests, nodes and every transition.

What the autoscaler decided is written before it acts on it: a launch request and its
ClientToken before RunInstances is sent, the instance ids as soon as the answer arrives.
``status`` and ``request`` read and write the same file while the daemon runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from steadyscale.core.lifecycle import TERMINAL, HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store import sqlite
from steadyscale.store.failures import Failures, read_failures
from steadyscale.store.sqlite import Schema, Store, StoreError, statements

# Version 1 of the ledger; MIGRATIONS take a file of any version to SCHEMA_VERSION.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS demand (
    position INTEGER PRIMARY KEY,
    bundle TEXT NOT NULL,
    count INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    node_type TEXT NOT NULL,
    count INTEGER NOT NULL,
    client_token TEXT NOT NULL UNIQUE,
    subnet_id TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    sent_at REAL,
    launched INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    node_type TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    request_id TEXT,
    instance_id TEXT UNIQUE,
    instance_type TEXT,
    availability_zone TEXT,
    private_ip TEXT,
    launched_at REAL,
    first_seen_at REAL,
    last_seen_at REAL,
    running_at REAL,
    terminate_requested_at REAL,
    terminate_accepted_at REAL,
    idle_since REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS nodes_by_status ON nodes (status);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_by_node ON transitions (node_id);
"""

# Each entry moves a ledger from version N-1 to N, in one transaction.
MIGRATIONS: dict[int, list[str]] = {
    1: statements(_SCHEMA),
    # The launch parameters of a request, so a resend after a restart sends exactly what
    # the first attempt sent even if the config changed (else EC2 answers
    # IdempotentParameterMismatch for the same ClientToken).
    # And when a node EC2 showed before went missing, so LOST is measured from then.
    2: [
        "ALTER TABLE requests ADD COLUMN spec TEXT",
        "ALTER TABLE nodes ADD COLUMN missing_since REAL",
    ],
}

_NODE_FIELDS = [f.name for f in fields(NodeRecord) if f.name != "history"]
# The meta key of the node types the daemon last started with (``core.changes``).
_NODE_TYPES = "node_types"
# The ledger's id (``Ledger.ledger_id``), and the requests still open when it was created:
# they were first sent without it, and EC2 compares tags on a resend of one ClientToken.
LEDGER_ID = "ledger_id"
_UNTAGGED = "untagged_requests"
# Cluster instances the ledger cannot explain, as the daemon last listed them (JSON), for
# ``status``: reported and left alone, never terminated.
UNKNOWN_INSTANCES = "unknown_instances"


class LedgerError(StoreError):
    """The ledger cannot be opened or read; it is never silently recreated."""


SCHEMA = Schema(
    name="ledger",
    migrations=MIGRATIONS,
    error=LedgerError,
    unreadable_hint="move it aside only if you are sure no instance it tracks is still running",
    migrate_hint="run the daemon of this version once to migrate it",
)
SCHEMA_VERSION = SCHEMA.version


@dataclass
class LaunchRequest:
    """One RunInstances call's intent: ``count`` nodes of a type under one ClientToken."""

    request_id: str
    node_type: str
    count: int
    client_token: str
    status: str  # "open" until EC2 answered definitively, then "done"
    created_at: float
    subnet_id: str | None = None
    attempts: int = 0
    sent_at: float | None = None
    launched: int = 0
    error: str | None = None
    spec: str | None = None  # JSON of the launch parameters sent with the ClientToken


class WriterLock(sqlite.WriterLock):
    """One daemon per ledger: an OS file lock beside it, holding the owner's pid, released
    by the OS when the process dies (even by SIGKILL)."""

    def __init__(self, ledger_path: str | Path) -> None:
        super().__init__(ledger_path, name="ledger", error=LedgerError)


class Ledger:
    """The ledger file, on ``store.sqlite``: safe to use from several threads."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Open (and create or migrate) the ledger; ``readonly`` opens an existing one for
        reading only, as ``status`` does while a daemon writes it: no lock, no schema
        change, and WAL lets it read while the daemon writes."""
        self.path = str(path)
        self.writer_lock: WriterLock | None = None
        self._db = Store(path, SCHEMA, readonly=readonly)
        if not readonly:
            self._give_id()

    def _give_id(self) -> None:
        """The first writable open gives the ledger its id, once (a concurrent first open
        keeps the id that won)."""
        if self.meta(LEDGER_ID) is not None:
            return
        with self.transaction():
            if self.meta(LEDGER_ID) is not None:
                return
            untagged = [r.request_id for r in self.requests(open_only=True)]
            if untagged:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)", (_UNTAGGED, json.dumps(untagged))
                )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (LEDGER_ID, str(uuid.uuid4())),
            )

    @property
    def ledger_id(self) -> str | None:
        """This ledger's id (a UUID4), tagged on every instance it launches: only this
        ledger may conclude such an instance is unwanted. None only in a ledger opened
        read-only that no writable open gave one yet."""
        return self.meta(LEDGER_ID)

    def untagged_requests(self) -> frozenset[str]:
        """Requests first sent before the ledger had an id: resent without it."""
        text = self.meta(_UNTAGGED)
        return frozenset(json.loads(text)) if text else frozenset()

    def is_empty(self) -> bool:
        """No launch request and no node: a fresh ledger, which explains no instance."""
        return not (
            self._db.row("SELECT request_id FROM requests LIMIT 1")
            or self._db.row("SELECT node_id FROM nodes LIMIT 1")
        )

    def all_meta(self) -> dict[str, str]:
        return {r["key"]: str(r["value"]) for r in self._db.rows("SELECT key, value FROM meta")}

    def acquire_writer(self) -> None:
        """Become the one daemon writing this ledger, or raise LedgerError."""
        if self.path == ":memory:" or self.writer_lock is not None:
            return
        self.writer_lock = WriterLock(self.path)
        self.writer_lock.acquire()

    def close(self) -> None:
        self._db.close()
        if self.writer_lock is not None:
            self.writer_lock.release()
            self.writer_lock = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._db.transaction():
            yield

    # ------------------------------------------------------------------ demand

    def set_demand(self, items: Iterable[DemandItem], at: float) -> None:
        with self.transaction():
            self.write_demand(items, at)

    def write_demand(self, items: Iterable[DemandItem], at: float) -> None:
        """``set_demand`` inside the caller's transaction."""
        self._db.execute("DELETE FROM demand")
        for position, item in enumerate(items):
            if item.count > 0:
                self._db.execute(
                    "INSERT INTO demand VALUES (?, ?, ?, ?)",
                    (position, json.dumps(item.bundle, sort_keys=True), item.count, at),
                )
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('demand_updated_at', ?)", (str(at),))

    def demand(self) -> list[DemandItem]:
        rows = self._db.rows("SELECT bundle, count FROM demand ORDER BY position")
        return [DemandItem(bundle=json.loads(r["bundle"]), count=r["count"]) for r in rows]

    def demand_updated_at(self) -> float | None:
        row = self._db.row("SELECT value FROM meta WHERE key='demand_updated_at'")
        return float(row["value"]) if row else None

    # ------------------------------------------------------------------ requests

    def save_request(self, request: LaunchRequest) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO requests (request_id, node_type, count, client_token, "
            "subnet_id, status, attempts, created_at, sent_at, launched, error, spec) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.request_id,
                request.node_type,
                request.count,
                request.client_token,
                request.subnet_id,
                request.status,
                request.attempts,
                request.created_at,
                request.sent_at,
                request.launched,
                request.error,
                request.spec,
            ),
        )

    def requests(self, *, open_only: bool = False) -> list[LaunchRequest]:
        query = "SELECT * FROM requests"
        if open_only:
            query += " WHERE status = 'open'"
        rows = self._db.rows(query + " ORDER BY created_at")
        return [LaunchRequest(**dict(r)) for r in rows]

    # ------------------------------------------------------------------ nodes

    def save_nodes(
        self, records: Iterable[NodeRecord], entries: Iterable[tuple[str, HistoryEntry]] = ()
    ) -> None:
        """Write records (all their fields) and new history entries; call in a transaction."""
        placeholders = ", ".join("?" for _ in _NODE_FIELDS)
        updates = ", ".join(f"{name} = excluded.{name}" for name in _NODE_FIELDS[1:])
        # An upsert, not INSERT OR REPLACE: a clash on instance_id must fail loudly rather
        # than silently delete the other node's row (and with it our memory of an instance).
        sql = (
            f"INSERT INTO nodes ({', '.join(_NODE_FIELDS)}) VALUES ({placeholders}) "
            f"ON CONFLICT(node_id) DO UPDATE SET {updates}"
        )
        self._db.executemany(
            sql, [tuple(_column(getattr(r, name)) for name in _NODE_FIELDS) for r in records]
        )
        self._db.executemany(
            "INSERT INTO transitions (node_id, status, at, reason) VALUES (?, ?, ?, ?)",
            [(node_id, e.status.value, e.at, e.reason) for node_id, e in entries],
        )

    def nodes(
        self, *, include_terminal: bool = False, with_history: bool = False
    ) -> list[NodeRecord]:
        query = "SELECT * FROM nodes"
        params: list[Any] = []
        if not include_terminal:
            query += f" WHERE status NOT IN ({', '.join('?' for _ in TERMINAL)})"
            params = [s.value for s in TERMINAL]
        records = []
        for row in self._db.rows(query + " ORDER BY created_at, node_id", params):
            values = dict(row)
            values["status"] = Status(values["status"])
            records.append(NodeRecord(**values))
        if with_history:
            by_id = {r.node_id: r for r in records}
            for row in self._db.rows(
                "SELECT node_id, status, at, reason FROM transitions ORDER BY id"
            ):
                record = by_id.get(row["node_id"])
                if record is not None:
                    record.history.append(
                        HistoryEntry(Status(row["status"]), row["at"], row["reason"])
                    )
        return records

    def known_instance_ids(self) -> set[str]:
        rows = self._db.rows("SELECT instance_id FROM nodes WHERE instance_id IS NOT NULL")
        return {r["instance_id"] for r in rows}

    def counts_by_status(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for row in self._db.rows(
            "SELECT node_type, status, COUNT(*) AS n FROM nodes GROUP BY node_type, status"
        ):
            result.setdefault(row["node_type"], {})[row["status"]] = row["n"]
        return result

    def recent_failures(self, limit: int = 5) -> Failures:
        """The nodes EC2 refuses to terminate, then the latest moves to a failure status:
        up to ``limit`` of each, newest first, in one query."""
        return read_failures(self._db, limit)

    # ------------------------------------------------------------------ node types

    def node_types(self) -> str | None:
        """The node types the daemon last started with, as ``core.changes`` encodes them;
        None in a ledger from before they were kept."""
        return self.meta(_NODE_TYPES)

    def start_with_node_types(self, snapshot: str, renames: Mapping[str, str]) -> None:
        """At the daemon's start, in one transaction: the live nodes of renamed node types
        take their new name, and the node types it starts with are kept. Launch requests
        keep the name they were sent under: it is in their node-type tag, which EC2
        compares on a resend under the same ClientToken."""
        finished = [s.value for s in TERMINAL]
        marks = ", ".join("?" for _ in finished)
        with self.transaction():
            for old, new in renames.items():
                self._db.execute(
                    "UPDATE nodes SET node_type = ? WHERE node_type = ? "
                    f"AND status NOT IN ({marks})",
                    (new, old, *finished),
                )
            self.set_meta(_NODE_TYPES, snapshot)

    def live_launch_specs(self) -> dict[str, str | None]:
        """The launch parameters of the requests that launched live nodes, by request id."""
        marks = ", ".join("?" for _ in TERMINAL)
        rows = self._db.rows(
            "SELECT request_id, spec FROM requests WHERE request_id IN (SELECT request_id "
            f"FROM nodes WHERE status NOT IN ({marks}))",
            [s.value for s in TERMINAL],
        )
        return {r["request_id"]: r["spec"] for r in rows}

    def save_progress(self, progress: Mapping[str, Any]) -> None:
        """Where demand stood at the daemon's last tick (unmet, infeasible, ...)."""
        self.set_meta("progress", json.dumps(dict(progress)))

    def progress(self) -> dict[str, Any] | None:
        text = self.meta("progress")
        return None if text is None else dict(json.loads(text))

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._db.row("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])


def _column(value: Any) -> Any:
    return value.value if isinstance(value, Status) else value
