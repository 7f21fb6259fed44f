"""The durable ledger (SQLite, WAL): demand, launch requests, nodes and every transition.

What the autoscaler decided is written before it acts on it: a launch request and its
ClientToken before RunInstances is sent, the instance ids as soon as the answer arrives.
``status`` and ``request`` read and write the same file while the daemon runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from steadyscale.core.lifecycle import TERMINAL, HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.errors import SteadyscaleError

SCHEMA_VERSION = 2

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


class LedgerError(SteadyscaleError):
    """The ledger cannot be opened or read; it is never silently recreated."""


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


class WriterLock:
    """One daemon per ledger: an OS file lock beside it, holding the owner's pid.

    The OS releases it when the process dies, even by SIGKILL, so a crashed daemon never
    blocks its successor.
    """

    def __init__(self, ledger_path: str | Path) -> None:
        self.ledger_path = str(ledger_path)
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        Path(self.ledger_path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(f"{self.ledger_path}.lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LedgerError(
                f"another steadyscale daemon (pid {holder}) is running on ledger "
                f"{self.ledger_path}; stop it first, or give this one another ledger"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class Failure:
    """A node's move to a failure status (launch failed, interrupted, lost), for status."""

    node_id: str
    node_type: str | None
    instance_id: str | None
    status: Status
    at: float
    reason: str


class Ledger:
    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Open (and create or migrate) the ledger; ``readonly`` opens an existing one for
        reading only, as ``status`` does while a daemon writes it: no lock, no schema
        change, and WAL lets it read while the daemon writes."""
        self.path = str(path)
        self.writer_lock: WriterLock | None = None
        if readonly:
            self._db = self._open_readonly()
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            fresh = (
                self._db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone()
                is None
            )
            self._db.executescript(_SCHEMA)
            if fresh:
                for statements in MIGRATIONS.values():
                    for statement in statements:
                        self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            else:
                self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"ledger {self.path} is unreadable ({exc}); move it aside only if you are "
                "sure no instance it tracks is still running"
            ) from None

    def _open_readonly(self) -> sqlite3.Connection:
        uri = Path(self.path).resolve().as_uri() + "?mode=ro"
        try:
            db = sqlite3.connect(
                uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"ledger {self.path} is unreadable ({exc})") from None
        version = int(row["value"]) if row else 0
        if version != SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} has schema version {version}, this steadyscale reads "
                f"version {SCHEMA_VERSION}; run the daemon of this version once to migrate "
                "it, or upgrade steadyscale"
            )
        return db

    def _migrate(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            raise LedgerError(
                f"ledger {self.path} has no schema version; it was not written "
                "by steadyscale, or is damaged"
            )
        version = int(row["value"])
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger {self.path} has schema version {version}, newer than this "
                f"steadyscale understands ({SCHEMA_VERSION}); upgrade steadyscale"
            )
        while version < SCHEMA_VERSION:
            version += 1
            with self.transaction():
                for statement in MIGRATIONS[version]:
                    self._db.execute(statement)
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),)
                )

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
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ demand

    def set_demand(self, items: Iterable[DemandItem], at: float) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM demand")
            for position, item in enumerate(items):
                if item.count > 0:
                    self._db.execute(
                        "INSERT INTO demand VALUES (?, ?, ?, ?)",
                        (position, json.dumps(item.bundle, sort_keys=True), item.count, at),
                    )
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('demand_updated_at', ?)", (str(at),)
            )

    def demand(self) -> list[DemandItem]:
        rows = self._db.execute("SELECT bundle, count FROM demand ORDER BY position")
        return [DemandItem(bundle=json.loads(r["bundle"]), count=r["count"]) for r in rows]

    def demand_updated_at(self) -> float | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='demand_updated_at'").fetchone()
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
        rows = self._db.execute(query + " ORDER BY created_at")
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
        for row in self._db.execute(query + " ORDER BY created_at, node_id", params):
            values = dict(row)
            values["status"] = Status(values["status"])
            records.append(NodeRecord(**values))
        if with_history:
            by_id = {r.node_id: r for r in records}
            for row in self._db.execute(
                "SELECT node_id, status, at, reason FROM transitions ORDER BY id"
            ):
                record = by_id.get(row["node_id"])
                if record is not None:
                    record.history.append(
                        HistoryEntry(Status(row["status"]), row["at"], row["reason"])
                    )
        return records

    def known_instance_ids(self) -> set[str]:
        rows = self._db.execute("SELECT instance_id FROM nodes WHERE instance_id IS NOT NULL")
        return {r["instance_id"] for r in rows}

    def counts_by_status(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for row in self._db.execute(
            "SELECT node_type, status, COUNT(*) AS n FROM nodes GROUP BY node_type, status"
        ):
            result.setdefault(row["node_type"], {})[row["status"]] = row["n"]
        return result

    def recent_failures(self, limit: int = 5) -> list[Failure]:
        """The latest moves to a failure status, newest first, with the node they hit."""
        rows = self._db.execute(
            "SELECT t.node_id, n.node_type, n.instance_id, t.status, t.at, t.reason "
            "FROM transitions t LEFT JOIN nodes n ON n.node_id = t.node_id "
            "WHERE t.status IN (?, ?, ?) ORDER BY t.id DESC LIMIT ?",
            (Status.LAUNCH_FAILED.value, Status.INTERRUPTED.value, Status.LOST.value, limit),
        )
        return [
            Failure(
                node_id=r["node_id"],
                node_type=r["node_type"],
                instance_id=r["instance_id"],
                status=Status(r["status"]),
                at=r["at"],
                reason=r["reason"],
            )
            for r in rows
        ]

    def save_progress(self, progress: Mapping[str, Any]) -> None:
        """Where demand stood at the daemon's last tick (unmet, infeasible, ...)."""
        self.set_meta("progress", json.dumps(dict(progress)))

    def progress(self) -> dict[str, Any] | None:
        text = self.meta("progress")
        return None if text is None else dict(json.loads(text))

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])


def _column(value: Any) -> Any:
    return value.value if isinstance(value, Status) else value
