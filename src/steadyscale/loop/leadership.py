"""Leadership of one replica among several on one ledger: follower until it takes the
lease, leader while it renews it, and trusted as leader only until its last renewal's
start + TTL - margin on its own monotonic clock.

The database judges the lease's expiry by its own clock; a leader cannot read that clock
without a round trip, so it trusts itself only for a TTL counted from *before* it asked,
less a margin for the two clocks' rates. Past that instant it sends nothing more, even
when the renewal merely has not come back yet: the successor may already lead.
``Leadership.check()`` is what the EC2 gate (``loop.gated``) asks before every mutation.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from steadyscale.errors import SteadyscaleError
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.leadership")

# A follower retries this long after the holder's lease expires.
_AFTER_EXPIRY = 0.05


class Lease(Protocol):
    """A lease with an epoch that only grows (``store.postgres_lease.PostgresLease``)."""

    def acquire(self) -> int | None:
        """Take the lease; its new epoch, or None while someone else holds it."""
        ...

    def renew(self, epoch: int) -> bool:
        """Extend the lease of ``epoch``; False once it is someone else's."""
        ...

    def release(self, epoch: int) -> None:
        """Hand the lease of ``epoch`` over now."""
        ...

    def expires_in(self) -> float | None:
        """Seconds until the current holder's lease expires (None: unknown), so that a
        follower tries again right then instead of up to a renewal interval later."""
        ...


class NotLeadingError(SteadyscaleError):
    """This replica may not act: it is not the leader, or no longer trusts that it is."""


class Role(enum.Enum):
    FOLLOWER = "follower"
    LEADER = "leader"


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts, how often it is renewed (or, by a follower, tried), and
    how much earlier than its expiry a leader stops trusting it."""

    ttl_seconds: float = 15.0
    renew_interval_seconds: float = 5.0
    margin_seconds: float = 2.0

    @property
    def trust_seconds(self) -> float:
        return self.ttl_seconds - self.margin_seconds


@dataclass(frozen=True)
class LeaderState:
    """Where a replica stands. ``trusted_until`` is on the leadership's clock."""

    role: Role = Role.FOLLOWER
    epoch: int | None = None
    trusted_until: float = -math.inf
    since: float = -math.inf  # when this role (and epoch) began
    reason: str = "starting"


class Leadership:
    """The state machine of one replica's leadership; ``step()`` renews or tries the lease
    when due, from one thread (the keeper's); every other method is safe from any thread."""

    def __init__(
        self,
        lease: Lease,
        clock: Clock,
        timing: LeaseTiming,
        *,
        on_change: Callable[[LeaderState], None] | None = None,
    ) -> None:
        self.lease = lease
        self.clock = clock
        self.timing = timing
        self.on_change = on_change
        self._lock = threading.Lock()
        self._state = LeaderState(since=clock.now())
        self._next_attempt = -math.inf

    @property
    def state(self) -> LeaderState:
        with self._lock:
            return self._state

    def trusted(self) -> bool:
        """Leading, and the trust of the last renewal has not run out."""
        state = self.state
        return state.role is Role.LEADER and self.clock.now() < state.trusted_until

    def check(self) -> None:
        """Raise ``NotLeadingError`` unless this replica may act now (asked before each EC2
        mutation). Past the trust deadline it also drops the leadership at once."""
        state = self.state
        if state.role is not Role.LEADER:
            raise NotLeadingError(f"not the leader ({state.reason})")
        if self.clock.now() >= state.trusted_until:
            self.lose(state.epoch, "the lease was not renewed in time")
            raise NotLeadingError(f"lease of epoch {state.epoch} no longer trusted")

    def due_in(self) -> float:
        """Seconds until ``step()`` has something to do (a renewal, an attempt, or the
        trust deadline)."""
        state, now = self.state, self.clock.now()
        due = self._next_attempt
        if state.role is Role.LEADER:
            due = min(due, state.trusted_until)
        return max(0.0, due - now)

    def step(self) -> LeaderState:
        """Renew the lease (leader) or try to take it (follower) when due; drop a
        leadership whose trust ran out."""
        state, now = self.state, self.clock.now()
        if state.role is Role.LEADER and now >= state.trusted_until:
            self.lose(state.epoch, "the lease was not renewed in time")
            state = self.state
        if now < self._next_attempt:
            return state
        self._next_attempt = now + self.timing.renew_interval_seconds
        if state.role is Role.LEADER and state.epoch is not None:
            self._renew(state.epoch, now)
        else:
            self._acquire(now)
        return self.state

    def lose(self, epoch: int | None, reason: str) -> None:
        """Stop leading ``epoch`` now (a renewal failed, the ledger fenced a write off, or
        the ledger is unreachable); a later epoch is left alone. The next step tries the
        lease again."""
        with self._lock:
            if self._state.role is not Role.LEADER or self._state.epoch != epoch:
                return
            self._state = LeaderState(
                role=Role.FOLLOWER, epoch=epoch, since=self.clock.now(), reason=reason
            )
            changed = self._state
        self._next_attempt = -math.inf
        log.warning("leadership of epoch %s lost: %s", epoch, reason)
        self._changed(changed)

    def release(self) -> None:
        """A clean stop: hand the lease over so a follower need not wait out the TTL."""
        state = self.state
        if state.role is Role.LEADER and state.epoch is not None:
            self.lose(state.epoch, "stopped")
            self.lease.release(state.epoch)

    # ------------------------------------------------------------------ internals

    def _acquire(self, started: float) -> None:
        epoch = self.lease.acquire()
        if epoch is None:
            expires_in = self.lease.expires_in()
            if expires_in is not None:
                # (A moment after the expiry, by the database's clock, measured from here.)
                retry = self.clock.now() + max(expires_in, 0.0) + _AFTER_EXPIRY
                self._next_attempt = min(self._next_attempt, retry)
            return
        with self._lock:
            self._state = LeaderState(
                role=Role.LEADER,
                epoch=epoch,
                trusted_until=started + self.timing.trust_seconds,
                since=self.clock.now(),
                reason="took the lease",
            )
            changed = self._state
        log.warning("leading with epoch %d", epoch)
        self._changed(changed)

    def _renew(self, epoch: int, started: float) -> None:
        if not self.lease.renew(epoch):
            self.lose(epoch, "the lease could not be renewed")
            return
        with self._lock:
            if self._state.role is Role.LEADER and self._state.epoch == epoch:
                # Counted from before the renewal was sent: the database's expiry is later.
                until = started + self.timing.trust_seconds
                self._state = LeaderState(
                    role=Role.LEADER,
                    epoch=epoch,
                    trusted_until=max(until, self._state.trusted_until),
                    since=self._state.since,
                    reason="renewed",
                )

    def _changed(self, state: LeaderState) -> None:
        if self.on_change is not None:
            self.on_change(state)
