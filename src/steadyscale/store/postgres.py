"""The ledger on PostgreSQL (psycopg 3): the ``Storage`` of a ``postgresql://`` ledger, so
that several replicas can share one ledger and one of them, fenced, writes it.

One connection, in autocommit: every write runs in an explicit transaction, a read on its
own is one statement. The SQL it is given is the ledger's portable SQL (``?``
placeholders, translated here); migrations are the shared ``Schema``'s, rendered for
PostgreSQL, one transaction each under a transaction-level advisory lock so that two
processes opening a new database do not both create it.

A broken connection makes the one call that met it raise the schema's ``unavailable``
error (``LedgerUnavailableError``); the next call connects again (and takes the writer
lock again if this store held it: the server released it with the old session). Every
write transaction first runs ``fence``, when set, and is refused (``FencedError``) unless
it returns one row whose first column is true.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row, tuple_row

from steadyscale.config.location import DatabaseURL, redact
from steadyscale.store.errors import FencedError, StoreError
from steadyscale.store.postgres_lease import (
    FENCED_WRITER,
    LeaseHolder,
    read_lease,
    take_writer_lock,
)
from steadyscale.store.storage import (
    META_TABLE,
    SET_META,
    VERSION_KEY,
    Dialect,
    Row,
    Schema,
    render,
    translate,
)

Connection = psycopg.Connection[dict[str, Any]]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# A server gone without a word (a lost machine, a cut network) is noticed in about half a
# minute, not after the kernel's default of hours: TCP keepalives, and a limit on how long
# sent data may go unacknowledged. The URL's own settings of these win.
KEEPALIVE = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def conninfo(url: DatabaseURL) -> str:
    """The URL with ``KEEPALIVE``'s defaults for what it does not set."""
    given = conninfo_to_dict(url.secret)
    return make_conninfo(url.secret, **{k: v for k, v in KEEPALIVE.items() if k not in given})


def holds_store(url: DatabaseURL, schema: Schema) -> bool:
    """Whether the database at ``url`` holds a store (a ``meta`` table): a database no
    daemon has written yet is not a ledger. Unreachable: the schema's ``unavailable``."""
    try:
        with psycopg.connect(conninfo(url), autocommit=True, connect_timeout=10) as conn:
            found = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        raise schema.unavailable(f"{schema.name} {url} is unavailable ({detail})") from None
    return bool(found and found[0])


def stored_version(conn: Connection, schema: Schema, where: str) -> int:
    """The database's schema version: 0 for a new one; refuses one whose ``meta`` has none."""
    # (Read from pg_tables, not to_regclass: a name looked up in the session's catalog
    # cache can stay "absent" after another session created it and committed.)
    found = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename = 'meta') AS present"
    ).fetchone()
    if not (found and found["present"]):
        reached = [
            version
            for version, query in schema.unversioned.items()
            if conn.execute(query).fetchone() is not None
        ]
        return max(reached, default=0)
    row = conn.execute("SELECT value FROM meta WHERE key = %s", (VERSION_KEY,)).fetchone()
    if row is None:
        raise schema.error(
            f"{schema.name} {where} has no schema version; it was not written by "
            "steadyscale, or is damaged"
        )
    return int(row["value"])


def upgrade(conn: Connection, schema: Schema, where: str) -> None:
    """Apply each migration the database lacks, one transaction each, under an advisory
    lock held until it commits (another process may be migrating it too)."""
    target = schema.version
    key = advisory_key(f"steadyscale {schema.name} schema")
    version = stored_version(conn, schema, where)
    while version < target:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            version = stored_version(conn, schema, where)
            if version >= target:
                break
            version += 1
            for statement in schema.migrations[version]:
                conn.execute(render(statement, "postgres"))
            conn.execute(render(META_TABLE, "postgres"))
            conn.execute(translate(SET_META), (VERSION_KEY, str(version)))
    if version > target:
        raise schema.error(
            f"{schema.name} {where} has schema version {version}, newer than this "
            f"steadyscale understands ({target}); upgrade steadyscale"
        )


def fence_holds(conn: Connection, sql: str, params: tuple[Any, ...]) -> bool:
    """Run a write transaction's fence: the session is named for the transaction only (a
    successor ends it if it outlives the lease: ``postgres_lease.FENCED_WRITER``), then the
    fence's query, which must return one row whose first column is true."""
    conn.execute("SELECT set_config('application_name', %s, true)", (FENCED_WRITER,))
    rows = conn.execute(translate(sql), params).fetchall()
    return len(rows) == 1 and bool(next(iter(rows[0].values()), False))


def fence_refused(name: str, where: str, failure: str | None) -> FencedError:
    if failure is not None:
        return FencedError(f"write to {name} {where} refused: its fence query failed ({failure})")
    return FencedError(
        f"write to {name} {where} refused: this process no longer holds the right to write "
        "it (its fence did not hold; another replica leads)"
    )


class PostgresStore:
    """One PostgreSQL database at its schema's version (the database is the store).

    ``readonly`` opens an existing one for reading only, as ``status`` does while a daemon
    writes it: every transaction of its session is read-only, no lock is taken, no schema
    change (a version other than the one this code reads is refused).
    """

    def __init__(
        self,
        url: DatabaseURL,
        schema: Schema,
        *,
        readonly: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.path = url.redacted
        self.schema = schema
        self.dialect: Dialect = "postgres"
        self.readonly = readonly
        self.connect_timeout = connect_timeout
        # (query, params) run first in every write transaction: see the module docstring.
        self.fence: tuple[str, tuple[Any, ...]] | None = None
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        self._in_transaction = False  # the server-side transaction is open
        self._depth = 0  # transaction() blocks open (a nested one joins the outer)
        self._cut_off = False  # the connection broke inside the open transaction()
        self._writer_key: int | None = None
        try:
            if readonly:
                self._check_readable()
            else:
                self._upgrade()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ connection

    def _connection(self) -> Connection:
        if self._cut_off:
            # The rest of a transaction whose start was rolled back with its connection
            # must not run, committed call by call, on a new one.
            raise self.schema.unavailable(
                f"{self.schema.name} {self.path} is unavailable (the connection broke in "
                "this transaction, which was rolled back); the next one connects again"
            )
        if self._conn is not None and not self._conn.closed:
            return self._conn
        settings = [
            *self.url.settings,
            *([("default_transaction_read_only", "on")] * self.readonly),
        ]
        given = conninfo_to_dict(self.url.secret).get("options") or ""
        options = " ".join([str(given), *(f"-c {k}={v}" for k, v in settings)]).strip()
        try:
            conn: Connection = psycopg.connect(
                conninfo(self.url),
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name=f"steadyscale pid {os.getpid()} on {socket.gethostname()}",
                options=options,
            )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None
        self._conn = conn
        if self._writer_key is not None:
            self._relock(conn, self._writer_key, lost=True)
        return conn

    def _unavailable(self, exc: psycopg.Error) -> StoreError:
        detail = redact(
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        return self.schema.unavailable(
            f"{self.schema.name} {self.path} is unavailable ({detail}); the next call "
            "connects again"
        )

    @contextmanager
    def _guard(self) -> Iterator[Connection]:
        """The connection for one call; a broken one is dropped and reported as the
        schema's ``unavailable`` error (the next call reconnects)."""
        conn = self._connection()
        try:
            yield conn
        except psycopg.Error as exc:
            # (A session the server ended, e.g. an idle transaction past its limit, can
            # surface as another class than OperationalError: the connection tells.)
            lost = conn.broken or conn.closed or isinstance(exc, psycopg.InterfaceError)
            if not lost and not isinstance(exc, psycopg.OperationalError):
                raise
            if lost:
                self._drop()
            raise self._unavailable(exc) from None

    def _drop(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        self._in_transaction = False
        self._cut_off = self._depth > 0

    def close(self) -> None:
        with self._lock:
            if self._writer_key is not None and self._conn is not None:
                # Released now, not when the server notices the session ended: a successor
                # started right after this close must find it free.
                with suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock_all()")
            self._writer_key = None
            self._drop()

    # ------------------------------------------------------------------ writer lock, lease
    def acquire_writer(self, name: str) -> None:
        """Become the one writer (a session-level advisory lock on ``name``), or raise the
        schema's error naming who holds it. The server releases it when the session ends,
        even when the process was killed."""
        key = advisory_key(name)
        with self._lock:
            if self._writer_key == key:
                return
            with self._guard() as conn:
                self._relock(conn, key)
            self._writer_key = key

    def _relock(self, conn: Connection, key: int, *, lost: bool = False) -> None:
        """Take the lock, refused too while a replica leads (``take_writer_lock``)."""
        try:
            refused = take_writer_lock(conn, key)
        except psycopg.Error as exc:
            self._drop()
            raise self._unavailable(exc) from None
        if refused is None:
            return
        self._writer_key = None
        where = f"{self.schema.name} {self.path}"
        if isinstance(refused, LeaseHolder):
            raise self.schema.error(refused.refusal(where))
        self._drop()
        raised = "this daemon's writer lock went with its broken connection, and " if lost else ""
        raise self.schema.error(
            f"{raised}another steadyscale daemon ({refused}) is running on {where}; stop it "
            f"first, or give this one another {self.schema.name}"
        )

    def lease(self) -> LeaseHolder | None:  # the replicas' leader, read for ``status``
        with self._lock, self._guard() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            return read_lease(cursor)

    # ------------------------------------------------------------------ schema

    def _check_readable(self) -> None:
        with self._lock, self._guard() as conn:
            version = stored_version(conn, self.schema, self.path)
        if version == 0:
            raise self.schema.error(
                f"{self.schema.name} {self.path} is empty: no steadyscale daemon has written it yet"
            )
        if version != self.schema.version:
            raise self.schema.error(
                f"{self.schema.name} {self.path} has schema version {version}, this "
                f"steadyscale reads version {self.schema.version}; {self.schema.migrate_hint}, "
                "or upgrade steadyscale"
            )

    def _upgrade(self) -> None:
        with self._lock, self._guard() as conn:
            upgrade(conn, self.schema, self.path)

    # ------------------------------------------------------------------ the Storage calls

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, fenced; other threads wait for it to end. Inside one,
        another ``transaction`` is part of it."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._guard() as conn:
                conn.execute("BEGIN")
                self._in_transaction = True
            self._depth = 1
            try:
                self._check_fence()
                yield
            except BaseException:
                with suppress(StoreError):  # the body's error is the one to report
                    self._end("ROLLBACK")
                raise
            else:
                self._end("COMMIT")
            finally:
                self._depth = 0
                self._cut_off = False

    def _end(self, command: str) -> None:
        if not self._in_transaction:
            return  # the connection broke inside: the server rolled it back
        self._in_transaction = False
        with self._guard() as conn:
            conn.execute(command)

    def _check_fence(self) -> None:
        if self.fence is None:
            return
        try:
            with self._guard() as conn:
                held = fence_holds(conn, *self.fence)
        except psycopg.Error as exc:
            raise fence_refused(self.schema.name, self.path, redact(str(exc).strip())) from None
        if not held:
            raise fence_refused(self.schema.name, self.path, None)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock, self.transaction(), self._guard() as conn:
            conn.execute(translate(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Many rows of one statement; psycopg sends them in pipeline mode, so a thousand
        rows are not a thousand round trips."""
        batch = list(rows)
        if not batch:
            return
        with self._lock, self.transaction(), self._guard() as conn, conn.cursor() as cursor:
            cursor.executemany(translate(sql), batch)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock, self._guard() as conn:
            return list(conn.execute(translate(sql), params).fetchall())

    def row(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        with self._lock, self._guard() as conn:
            return conn.execute(translate(sql), params).fetchone()
