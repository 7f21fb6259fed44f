"""The leader lease of replicas on a PostgreSQL ledger: one row per ledger whose epoch only
grows, taken, renewed and released on a connection of its own.

Expiry is judged by the database's clock alone (``clock_timestamp()``), so the replicas'
clocks never have to agree. A takeover always increments the epoch: the leader's ledger
writes are fenced by it (``fence_query``), so a replica that lost the lease while paused
or cut off cannot write once a successor took over. The lease never decides how long a
leader may trust itself: that is the caller's, on its own monotonic clock
(``loop.leadership``). Any connection trouble is "not leading"; the next call reconnects.
Each call is one statement that commits on the server as it ends: a replica frozen in the
middle of a call (a renewal waiting behind its own write, then SIGSTOP) holds no lock on
the lease row afterwards, so it cannot hold a successor's takeover back.

The lease and the ledger's writer lock (a session-level advisory lock, taken by the
commands that write the ledger while no daemon runs: import, adopt, carry-over) exclude
each other: a takeover runs under the same advisory key, transaction-level and tried
only, so no replica takes the lease while a command holds the lock (and a replica that
dies or pauses never holds it afterwards); a command refuses while the lease is held
(``fence_out_leader``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

log = logging.getLogger("steadyscale.lease")

TABLE = "steadyscale_lease"
DEFAULT_NAME = "leader"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    name TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    holder TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)
"""

# Take the row if it is absent, expired by the database's clock, or held under our own
# name (a restart of the same replica need not wait out its former lease); every take
# increments the epoch, so the former holder's epoch is fenced out even then.
_ACQUIRE = f"""
INSERT INTO {TABLE} AS l (name, epoch, holder, expires_at)
SELECT %(name)s, 1, %(holder)s, clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE {{free}}
ON CONFLICT (name) DO UPDATE
SET epoch = l.epoch + 1, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
RETURNING epoch
"""

# The application name a replica's ledger session carries while it is inside a fenced
# write transaction (``PostgresStore``). Such a transaction holds a share lock on the lease
# row; a leader frozen inside one (SIGSTOP, a VM pause, mid-pipeline where the server's
# idle-in-transaction limit is not armed) would hold the takeover below back for as long.
FENCED_WRITER = "steadyscale-fenced-writer"

# Before a takeover of an expired lease: end the sessions still inside a fenced write. Their
# leader stopped trusting its lease before it expired, so none of them may commit anyway.
_EVICT = f"""
SELECT count(*) FILTER (WHERE pg_terminate_backend(a.pid, 2000)) FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.application_name = '{FENCED_WRITER}'
AND a.pid <> pg_backend_pid() AND EXISTS (
    SELECT 1 FROM {TABLE} WHERE name = %(name)s AND expires_at <= clock_timestamp())
"""

# Renewal is conditional on our epoch only: while no one took over, nothing was written
# under another epoch, so extending is safe even a little after expiry.
_RENEW = f"""
UPDATE {TABLE} SET expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
WHERE name = %(name)s AND epoch = %(epoch)s AND holder = %(holder)s
RETURNING epoch
"""

# Expired at once, the epoch kept: the next replica takes over without waiting the TTL.
_RELEASE = f"""
UPDATE {TABLE} SET expires_at = clock_timestamp()
WHERE name = %(name)s AND epoch = %(epoch)s AND holder = %(holder)s
"""

_READ = f"""
SELECT epoch, holder, EXTRACT(EPOCH FROM expires_at - clock_timestamp())::float8
FROM {TABLE} WHERE name = %(name)s
"""

# A takeover waits for no command: tried in the take's own statement (``{free}`` above),
# and given up while one holds the writer lock.
_EXCLUSIVE = "pg_try_advisory_xact_lock(%(key)s::bigint)"

# A command under the writer lock moves an expired lease's epoch on: its former holder,
# paused past its lease, can then neither renew it nor commit a write fenced by it.
_FENCE_OUT = f"""
UPDATE {TABLE} SET epoch = epoch + 1, expires_at = LEAST(expires_at, clock_timestamp())
WHERE name = %(name)s
"""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the lease, as the database sees it now."""

    epoch: int
    holder: str
    expires_in_seconds: float  # negative once expired

    @property
    def expired(self) -> bool:
        return self.expires_in_seconds <= 0

    def refusal(self, where: str) -> str:
        """Why a command may not write the ledger ``where`` now: this replica leads it."""
        return (
            f"replica {self.holder} leads {where} (lease epoch {self.epoch}, expires in "
            f"{max(self.expires_in_seconds, 0):.0f}s by the database's clock); stop every "
            "steadyscale run on it first, then try again"
        )


def fence_query(epoch: int, name: str = DEFAULT_NAME) -> tuple[str, tuple[Any, ...]]:
    """The PostgreSQL store's ``fence``: a write commits only while the lease's epoch is
    still ``epoch`` (``FOR SHARE`` holds a takeover back until that write committed)."""
    return (f"SELECT epoch = ? FROM {TABLE} WHERE name = ? FOR SHARE", (epoch, name))


class PostgresLease:
    """The lease ``name`` of the database at ``url``, taken as ``holder`` for
    ``ttl_seconds`` at a time. Not thread-safe: one thread renews."""

    def __init__(
        self,
        url: str,
        *,
        holder: str,
        ttl_seconds: float,
        name: str = DEFAULT_NAME,
        timeout_seconds: float = 5.0,
        exclusive_key: int | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds:g}")
        self.url = url
        self.holder = holder
        self.name = name
        self.ttl_seconds = ttl_seconds
        # No call may block much longer than this, so a dead network reads as "not
        # leading" instead of a renewal that never returns.
        self.timeout_seconds = timeout_seconds
        # The ledger's writer-lock key: no takeover while a command holds that lock.
        self.exclusive_key = exclusive_key
        self._conn: psycopg.Connection[Any] | None = None

    # ------------------------------------------------------------------ the lease

    def acquire(self) -> int | None:
        """Take the lease if it is free, expired, or ours by name; the new epoch, or None
        while another replica holds it or the database cannot be reached."""
        # Read first, without a lock: a take attempted while another holds the lease would
        # wait on the row lock of the holder's fenced write (up to the statement timeout,
        # and past the lease's expiry), and would hold its renewals back meanwhile.
        seen = self.current()
        if seen is not None and seen.holder != self.holder and not seen.expired:
            return None
        if seen is not None and seen.expired:
            evicted = self._one(_EVICT, {"name": self.name})
            if evicted and evicted[0]:
                log.warning(
                    "lease %s: ended %d write(s) of a leader past its lease", self.name, evicted[0]
                )
        params: dict[str, Any] = {"name": self.name, "holder": self.holder, "ttl": self.ttl}
        free = "true"
        if self.exclusive_key is not None:
            free, params["key"] = _EXCLUSIVE, self.exclusive_key
        row = self._one(_ACQUIRE.replace("{free}", free), params)
        if row is None and self.exclusive_key is not None:
            self._log_writer_lock(self.exclusive_key)
        return None if row is None else int(row[0])

    def renew(self, epoch: int) -> bool:
        """Extend the lease of ``epoch``; False once another replica took over, or when
        the database cannot be reached."""
        params = {"name": self.name, "holder": self.holder, "epoch": epoch, "ttl": self.ttl}
        return self._one(_RENEW, params) is not None

    def release(self, epoch: int) -> None:
        """Let the lease of ``epoch`` expire now (a clean stop hands over at once)."""
        self._one(_RELEASE, {"name": self.name, "holder": self.holder, "epoch": epoch})

    def current(self) -> LeaseHolder | None:
        """The holder as the database sees it; None when there is none or no connection."""
        row = self._one(_READ, {"name": self.name})
        if row is None:
            return None
        return LeaseHolder(epoch=int(row[0]), holder=str(row[1]), expires_in_seconds=row[2])

    def expires_in(self) -> float | None:
        """Seconds until the holder's lease expires by the database's clock (negative once
        expired); None when there is none or no connection."""
        holder = self.current()
        return None if holder is None else holder.expires_in_seconds

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    @property
    def ttl(self) -> float:
        return float(self.ttl_seconds)

    # ------------------------------------------------------------------ plumbing

    def _one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """One statement, its own transaction on the server (autocommit, no BEGIN): it
        commits when it ends there, whatever becomes of this process meanwhile, so a
        replica frozen mid-call never holds the lease row locked. Its first row; None when
        there is none or the connection failed (closed, reopened by the next call)."""
        try:
            cursor = self._connection().execute(sql, params)
            return cursor.fetchone() if cursor.description is not None else None
        except psycopg.Error as exc:
            log.warning("lease %s: database unavailable: %s", self.name, _first_line(exc))
            self.close()
            return None

    def _log_writer_lock(self, key: int) -> None:
        """Say which command holds the ledger's writer lock, if one does (a take refused)."""
        try:
            holder = lock_holder(self._connection(), key)
        except psycopg.Error:
            return
        if holder is not None:
            log.info("lease %s: not taken while %s holds the ledger", self.name, holder)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            timeout_ms = int(self.timeout_seconds * 1000)
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.timeout_seconds)),
                # The server gives up on a statement, the kernel on an unanswered send.
                options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
                tcp_user_timeout=timeout_ms,
                keepalives=1,
                keepalives_idle=max(1, round(self.timeout_seconds)),
                keepalives_interval=1,
                keepalives_count=3,
                application_name=f"steadyscale-lease/{self.holder}"[:63],
            )
            try:
                conn.execute(_CREATE)
            except psycopg.errors.UniqueViolation:
                pass  # another replica created it at the same instant
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn


def lock_holder(conn: psycopg.Connection[Any], key: int) -> str | None:
    """Who holds the advisory lock ``key`` in this database (its application name)."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute(
            "SELECT a.application_name FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        )
        row = cursor.fetchone()
    return None if row is None else str(row[0]).removeprefix("steadyscale ")


def read_lease(
    cursor: psycopg.Cursor[Any], name: str = DEFAULT_NAME, *, for_update: bool = False
) -> LeaseHolder | None:
    """The lease as the database sees it, read on any connection without creating its
    table (``status`` reads it read-only); None when no replica ever took it."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
    exists = cursor.fetchone()
    if not (exists and exists[0]):
        return None  # no replica ever ran on this database
    cursor.execute(_READ + (" FOR UPDATE" if for_update else ""), {"name": name})
    row = cursor.fetchone()
    if row is None:
        return None
    return LeaseHolder(epoch=int(row[0]), holder=str(row[1]), expires_in_seconds=row[2])


def fence_out_leader(conn: psycopg.Connection[Any], name: str = DEFAULT_NAME) -> LeaseHolder | None:
    """For a command holding the ledger's writer lock on ``conn`` (no replica can take the
    lease meanwhile): the leader while its lease is unexpired by the database's clock (the
    command must refuse), else None, the lease's epoch moved on if there is one."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
        leader = read_lease(cursor, name, for_update=True)
        if leader is None:
            return None
        if not leader.expired:
            return leader
        cursor.execute(_FENCE_OUT, {"name": name})
    return None


def take_writer_lock(conn: psycopg.Connection[Any], key: int) -> str | LeaseHolder | None:
    """Take the ledger's writer lock ``key`` for this session: None once taken; else who
    holds it (a session's name), or the leader while a replica's lease is unexpired (the
    lock let go again). Held, it keeps every replica from taking the lease."""
    with conn.cursor(row_factory=tuple_row) as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
        taken = cursor.fetchone()
    if not (taken and taken[0]):
        return lock_holder(conn, key) or "unknown"
    leader = fence_out_leader(conn)
    if leader is not None:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
    return leader


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
