"""The one SQLite layer under every file steadyscale keeps (the ledger, the Ray state file):
WAL, a schema version in a ``meta`` table, versioned migrations applied one transaction
each, a read-only mode, a thread-safe transaction helper, and the single-writer lock.
(``Schema`` is shared with the PostgreSQL store: ``storage``.)
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

from steadyscale.store.errors import StoreError
from steadyscale.store.storage import META_TABLE, SET_META, VERSION_KEY, Dialect, Schema, render

MEMORY = ":memory:"

__all__ = ["MEMORY", "Schema", "Store", "StoreError", "WriterLock", "statements"]


def statements(script: str) -> list[str]:
    """The statements of an SQL script, one each, as ``execute`` takes them (a script run
    with ``executescript`` would commit the transaction a migration runs in)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()!r}")
    return found


class Store:
    """One SQLite file (or ``":memory:"``) at its schema's version: the ``Storage`` of a
    ledger file and the Ray provider's state file.

    Opened for writing, it is created or migrated; ``readonly`` opens an existing one for
    reading only, as ``status`` does while a daemon writes it: no lock, no schema change
    (a version other than the one this code reads is refused), and WAL lets it read while
    another process writes. Calls from several threads are serialised.
    """

    def __init__(
        self,
        path: str | Path,
        schema: Schema,
        *,
        readonly: bool = False,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = str(path)
        self.schema = schema
        self.dialect: Dialect = "sqlite"
        self._lock = threading.RLock()
        try:
            self._db = self._connect(readonly=readonly)
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc, readonly=readonly) from None
        try:
            if readonly:
                self._check_readable()
            else:
                if self.path != MEMORY:
                    self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._upgrade()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._unreadable(exc, readonly=readonly) from None
            raise

    def _unreadable(self, exc: sqlite3.DatabaseError, *, readonly: bool) -> StoreError:
        message = f"{self.schema.name} {self.path} is unreadable ({exc})"
        if self.schema.unreadable_hint and not readonly:
            message += f"; {self.schema.unreadable_hint}"
        return self.schema.error(message)

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        if readonly:
            target = Path(self.path).resolve().as_uri() + "?mode=ro"
        else:
            target = self.path
            if self.path != MEMORY:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            target,
            uri=readonly,
            timeout=10.0,
            isolation_level=None,  # transactions are ours: BEGIN IMMEDIATE ... COMMIT
            check_same_thread=False,
        )
        db.row_factory = sqlite3.Row
        return db

    def _check_readable(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
        version = int(row["value"]) if row else 0
        if version != self.schema.version:
            raise self.schema.error(
                f"{self.schema.name} {self.path} has schema version {version}, this "
                f"steadyscale reads version {self.schema.version}; {self.schema.migrate_hint}, "
                "or upgrade steadyscale"
            )

    def _stored_version(self) -> int:
        """The file's version: 0 for a new file; refuses a file whose ``meta`` has none."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            reached = [
                version
                for version, query in self.schema.unversioned.items()
                if self._db.execute(query).fetchone() is not None
            ]
            return max(reached, default=0)
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (VERSION_KEY,)).fetchone()
        if row is None:
            raise self.schema.error(
                f"{self.schema.name} {self.path} has no schema version; it was not written "
                "by steadyscale, or is damaged"
            )
        return int(row["value"])

    def _upgrade(self) -> None:
        """Apply each migration the file lacks, one transaction each."""
        target = self.schema.version
        version = self._stored_version()
        while version < target:
            with self.transaction():
                # Read again under the write lock: another process may have migrated it.
                version = self._stored_version()
                if version >= target:
                    break
                version += 1
                for statement in self.schema.migrations[version]:
                    self._db.execute(render(statement, self.dialect))
                self._db.execute(META_TABLE)
                self._db.execute(SET_META, (VERSION_KEY, str(version)))
        if version > target:
            raise self.schema.error(
                f"{self.schema.name} {self.path} has schema version {version}, newer than "
                f"this steadyscale understands ({target}); upgrade steadyscale"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; other threads wait for it to end."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock:
            self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._db.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            found: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
            return found


class WriterLock:
    """One writer per file: an OS file lock beside it (``<path>.lock``), holding the owner's
    pid. The OS releases it when the process dies, even by SIGKILL, so a crashed writer
    never blocks its successor.
    """

    def __init__(
        self, path: str | Path, *, name: str = "ledger", error: type[StoreError] = StoreError
    ) -> None:
        self.path = str(path)
        self.name = name
        self.error = error
        self._handle: TextIO | None = None

    def acquire(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(f"{self.path}.lock", "a+", encoding="utf-8")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise self.error(
                f"another steadyscale daemon (pid {holder}) is running on {self.name} "
                f"{self.path}; stop it first, or give this one another {self.name}"
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
