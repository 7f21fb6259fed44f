"""Token buckets, the rate-limiting shape EC2 uses for its API and resource limits.

Pure: the caller passes the time, so the same bucket serves the emulator (server side),
the autoscaler's client-side pacing and tests with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# EC2's default token buckets per account and region, as (capacity, refill per second).
# Request buckets count calls; every action not named falls into "non-mutating" (Describe*,
# Get*, List*) or "mutating". Resource buckets count instances launched or terminated.
EC2_REQUEST_BUCKETS: dict[str, tuple[float, float]] = {
    "RunInstances": (5, 2),
    # CreateFleet has a bucket of its own; its documented size is RunInstances' order.
    "CreateFleet": (5, 2),
    "TerminateInstances": (100, 5),
    "CreateTags": (100, 10),
    "DescribeInstances": (100, 20),
    "non-mutating": (100, 20),
    "mutating": (200, 5),
}
EC2_RESOURCE_BUCKETS: dict[str, tuple[float, float]] = {
    "RunInstances": (1000, 2),
    "TerminateInstances": (1000, 20),
}


@dataclass
class TokenBucket:
    """``capacity`` tokens at most, refilled at ``refill_per_second``; starts full."""

    capacity: float
    refill_per_second: float
    _tokens: float = field(init=False)
    _updated_at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.capacity <= 0:
            raise ValueError(f"bucket capacity must be > 0, got {self.capacity}")
        if self.refill_per_second < 0:
            raise ValueError(f"refill rate must be >= 0, got {self.refill_per_second}")
        self._tokens = self.capacity

    def _refill(self, now: float) -> None:
        if self._updated_at is not None and now > self._updated_at:
            elapsed = now - self._updated_at
            self._tokens = min(self.capacity, self._tokens + elapsed * self.refill_per_second)
        if self._updated_at is None or now > self._updated_at:
            self._updated_at = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, now: float, count: float = 1.0) -> bool:
        """Take ``count`` tokens if there are that many; never goes negative."""
        self._refill(now)
        if self._tokens + 1e-9 >= count:
            self._tokens = max(0.0, self._tokens - count)
            return True
        return False

    def seconds_until(self, now: float, count: float = 1.0) -> float:
        """How long until ``count`` tokens are available (inf if they never will be)."""
        self._refill(now)
        missing = count - self._tokens
        if missing <= 0:
            return 0.0
        if self.refill_per_second == 0 or count > self.capacity:
            return float("inf")
        return missing / self.refill_per_second
