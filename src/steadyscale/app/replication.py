"""What makes a daemon one replica among several on a PostgreSQL ledger: its lease and
leadership, the fence of its ledger writes, and the errors that end its leadership.
Assembled here for ``app.runtime``; run by ``app.replica``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from steadyscale.config import HaConfig
from steadyscale.loop.leadership import (
    Leadership,
    LeaderState,
    LeaseTiming,
    NotLeadingError,
    Role,
)
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import Clock, MonotonicClock

Fence = tuple[str, tuple[Any, ...]]
# A follower's fence: no write of its may commit, whatever the lease says.
REFUSE_WRITES: Fence = ("SELECT false", ())


@dataclass
class Replication:
    """A replica's leadership (the lease), how to fence the ledger's writes with an
    epoch (None: refuse every write, as a follower), what a new leader claims in the
    ledger, the errors that end a tick and the leadership with it, and how to let go."""

    leadership: Leadership
    fence: Callable[[int | None], None]
    on_lead: Callable[[], None]
    stop_on: tuple[type[Exception], ...]
    close: Callable[[], None]


def build_replication(
    ha: HaConfig,
    *,
    url: str,
    replica_id: str,
    metrics: Metrics,
    set_fence: Callable[[Fence], None],
    on_lead: Callable[[], None],
    errors: tuple[type[Exception], ...],
    clock: Clock | None = None,
) -> Replication:
    """The replication of ``replica_id`` on the ledger database at ``url``: its lease on a
    connection of its own, its trust measured on ``clock`` (monotonic by default), its
    ledger writes refused until it leads, and ``errors`` (the ledger's fenced and
    unavailable errors) ending its leadership."""
    # (psycopg loads only for a PostgreSQL ledger)
    from steadyscale.store.postgres_lease import PostgresLease, fence_query  # noqa: PLC0415

    lease = PostgresLease(url, holder=replica_id, ttl_seconds=ha.lease_ttl_seconds)
    timing = LeaseTiming(
        ttl_seconds=ha.lease_ttl_seconds,
        renew_interval_seconds=ha.renew_interval_seconds,
        margin_seconds=ha.margin_seconds,
    )

    def on_change(state: LeaderState) -> None:
        # A loss shows at once; leading shows once the new leader has recovered.
        if state.role is Role.FOLLOWER:
            metrics.leader.set(leading=False, epoch=None)

    leadership = Leadership(lease, clock or MonotonicClock(), timing, on_change=on_change)

    def fence(epoch: int | None) -> None:
        set_fence(REFUSE_WRITES if epoch is None else fence_query(epoch, lease.name))

    set_fence(REFUSE_WRITES)
    metrics.leader.set(leading=False, epoch=None)
    return Replication(
        leadership=leadership,
        fence=fence,
        on_lead=on_lead,
        stop_on=(NotLeadingError, *errors),
        close=lease.close,
    )
