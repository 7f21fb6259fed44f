"""The durable ledger: demand, launch requests, nodes and every transition, in a SQLite
file (WAL) or a PostgreSQL database (``ledger: postgresql://...``), behind one storage
interface (``storage.Storage``) with the same schema, versions and migrations.

What the autoscaler decided is written before it acts on it: a launch request and its
ClientToken before RunInstances is sent, the instance ids as soon as the answer arrives.
``status`` and ``request`` read and write the same ledger while the daemon runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from steadyscale.config.location import DatabaseURL, LedgerLocation, is_url
from steadyscale.core.lifecycle import TERMINAL, HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store import demand_entries, sqlite
from steadyscale.store.api_records import API_TABLES
from steadyscale.store.errors import LedgerError, LedgerUnavailableError
from steadyscale.store.failures import Failures, read_failures
from steadyscale.store.ledger_schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION
from steadyscale.store.sqlite import Store
from steadyscale.store.storage import SET_META, VERSION_KEY, Storage
from steadyscale.store.workload import WORKLOAD_TABLES, WorkloadLedger

if TYPE_CHECKING:
    from steadyscale.store.postgres import PostgresStore

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "WRITER_LOCK",
    "LaunchRequest",
    "Ledger",
    "LedgerError",
    "LedgerUnavailableError",
    "WriterLock",
    "as_location",
    "ledger_exists",
    "open_store",
]


_NODE_FIELDS = [f.name for f in fields(NodeRecord) if f.name != "history"]
_REQUEST_FIELDS = [
    "request_id",
    "node_type",
    "count",
    "client_token",
    "subnet_id",
    "status",
    "attempts",
    "created_at",
    "sent_at",
    "launched",
    "error",
    "spec",
]


def _upsert(table: str, columns: list[str]) -> str:
    """Insert a row, or update every column of the row with its key (the first column)."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns[1:])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    )


# An upsert, not INSERT OR REPLACE: a clash on instance_id must fail loudly rather than
# silently delete the other node's row (and with it our memory of an instance).
_SAVE_NODE = _upsert("nodes", _NODE_FIELDS)
_SAVE_REQUEST = _upsert("requests", _REQUEST_FIELDS)
_TABLES = ("demand", "requests", "nodes", "transitions")
# The meta key of the node types the daemon last started with (``core.changes``).
_NODE_TYPES = "node_types"
# The ledger's id (``Ledger.ledger_id``), and the requests still open when it was created:
# they were first sent without it, and EC2 compares tags on a resend of one ClientToken.
LEDGER_ID = "ledger_id"
_UNTAGGED = "untagged_requests"
# Cluster instances the ledger cannot explain, as the daemon last listed them (JSON), for
# ``status``: reported and left alone, never terminated.
UNKNOWN_INSTANCES = "unknown_instances"


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


# The advisory lock of a PostgreSQL ledger's one writer (one database per ledger).
WRITER_LOCK = "steadyscale ledger writer"


def as_location(where: str | LedgerLocation) -> LedgerLocation:
    """A ledger location from a path or URL given as text (a URL is never a path)."""
    if isinstance(where, str):
        return DatabaseURL(where) if is_url(where) else Path(where)
    return where


def open_store(where: LedgerLocation, *, readonly: bool = False) -> Storage:
    """The ledger's storage at ``where``: a SQLite file, or a PostgreSQL database."""
    if isinstance(where, DatabaseURL):
        # (psycopg loads only for a PostgreSQL ledger)
        from steadyscale.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(where, SCHEMA, readonly=readonly)
    return Store(where, SCHEMA, readonly=readonly)


def ledger_exists(where: LedgerLocation) -> bool:
    """Whether a ledger is at ``where``: the file, or a database a daemon has written."""
    if isinstance(where, DatabaseURL):
        from steadyscale.store.postgres import holds_store  # noqa: PLC0415

        return holds_store(where, SCHEMA)
    return where.exists()


class Ledger(WorkloadLedger):
    """The ledger, on a file or a database (``store``): safe to use from several threads.
    What the workload reports (usage, drain acks) comes from ``WorkloadLedger``."""

    def __init__(self, location: str | LedgerLocation, *, readonly: bool = False) -> None:
        """Open (and create or migrate) the ledger; ``readonly`` opens an existing one for
        reading only, as ``status`` does while a daemon writes it: no lock, no schema
        change, and it reads while the daemon writes. ``path`` is how messages show it (a
        URL's password as ***)."""
        self.location = as_location(location)
        self.path = str(self.location)
        self.writer_lock: WriterLock | None = None
        self._db = open_store(self.location, readonly=readonly)
        if not readonly:
            self._give_id()

    @property
    def store(self) -> Storage:
        """The storage under the ledger (a ``PostgresStore`` has the ``fence`` hook)."""
        return self._db

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
        """Become the one daemon writing this ledger, or raise LedgerError: a file lock
        beside a file, a session-level advisory lock in a PostgreSQL database."""
        if isinstance(self.location, DatabaseURL):
            cast("PostgresStore", self._db).acquire_writer(WRITER_LOCK)
            return
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

    def clear(self) -> None:
        """Forget everything but the schema, in one transaction: a new ledger in place,
        with a new id (a database is not deleted as a file is)."""
        with self.transaction():
            for table in (*_TABLES, *WORKLOAD_TABLES, *API_TABLES):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("DELETE FROM meta WHERE key <> ?", (VERSION_KEY,))
        self._give_id()

    # ------------------------------------------------------------------ demand

    def set_demand(self, items: Iterable[DemandItem], at: float) -> None:
        with self.transaction():
            self.write_demand(items, at)

    def write_demand(self, items: Iterable[DemandItem], at: float) -> None:
        """``set_demand`` inside the caller's transaction: the demand is ``items``, its one
        entry ``default`` (``store.demand_entries``)."""
        demand_entries.replace_demand(self._db, items, at)

    def demand(self) -> list[DemandItem]:
        rows = self._db.rows("SELECT bundle, count FROM demand ORDER BY position")
        return [DemandItem(bundle=json.loads(r["bundle"]), count=r["count"]) for r in rows]

    def demand_updated_at(self) -> float | None:
        row = self._db.row("SELECT value FROM meta WHERE key='demand_updated_at'")
        return float(row["value"]) if row else None

    # ------------------------------------------------------------------ requests

    def save_request(self, request: LaunchRequest) -> None:
        self._db.execute(_SAVE_REQUEST, tuple(getattr(request, name) for name in _REQUEST_FIELDS))

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
        self._db.executemany(
            _SAVE_NODE, [tuple(_column(getattr(r, name)) for name in _NODE_FIELDS) for r in records]
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
        self._db.execute(SET_META, (key, value))

    def meta(self, key: str) -> str | None:
        row = self._db.row("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])


def _column(value: Any) -> Any:
    return value.value if isinstance(value, Status) else value
