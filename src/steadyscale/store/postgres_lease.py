"""The leader lease of replicas on a PostgreSQL ledger: one row per ledger whose epoch only
grows, taken, renewed and released on a connection of its own.

Expiry is judged by the database's clock alone (``clock_timestamp()``), so the replicas'
clocks never have to agree. A takeover always increments the epoch: the leader's ledger
writes are fenced by it (``fence_query``), so a replica that lost the lease while paused
or cut off cannot write once a successor took over. The lease never decides how long a
leader may trust itself: that is the caller's, on its own monotonic clock
(``loop.leadership``). Any connection trouble is "not leading"; the next call reconnects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg

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
VALUES (%(name)s, 1, %(holder)s, clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (name) DO UPDATE
SET epoch = l.epoch + 1, holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
RETURNING epoch
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


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds the lease, as the database sees it now."""

    epoch: int
    holder: str
    expires_in_seconds: float  # negative once expired

    @property
    def expired(self) -> bool:
        return self.expires_in_seconds <= 0


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
        self._conn: psycopg.Connection[Any] | None = None

    # ------------------------------------------------------------------ the lease

    def acquire(self) -> int | None:
        """Take the lease if it is free, expired, or ours by name; the new epoch, or None
        while another replica holds it or the database cannot be reached."""
        row = self._one(_ACQUIRE, {"name": self.name, "holder": self.holder, "ttl": self.ttl})
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
        """One statement in a transaction of its own; its first row, None when there is
        none or the connection failed (closed, reopened by the next call)."""
        try:
            conn = self._connection()
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone() if cursor.description is not None else None
        except psycopg.Error as exc:
            log.warning("lease %s: database unavailable: %s", self.name, _first_line(exc))
            self.close()
            return None

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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
