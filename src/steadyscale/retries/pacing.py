"""Client-side pacing shared by every backend: token buckets mirroring EC2's own.

"Action" buckets count calls, "instances:RunInstances" counts instances launched. A call
whose token is a short wait away waits for it; a longer wait skips the call (``Throttled``)
rather than provoke EC2's RequestLimitExceeded. A launch never waits: its intent is in the
ledger, so a launch the bucket cannot serve now goes out (same ClientToken) at a later tick,
and no tick spends its time asleep on the launch bucket while nothing is observed or
terminated.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from steadyscale.errors import Throttled
from steadyscale.retries.clock import Clock
from steadyscale.retries.tokenbucket import TokenBucket

INSTANCES_BUCKET = "instances:RunInstances"
UNLIMITED_BUDGET = 1_000_000
# Calls that go out at a later tick rather than wait for a token.
NEVER_WAIT = frozenset({"RunInstances", "CreateFleet"})


class ClientPacer:
    def __init__(
        self, clock: Clock, rate_limits: Mapping[str, tuple[float, float]] | None, max_wait: float
    ) -> None:
        self._clock = clock
        self._buckets = {
            name: TokenBucket(capacity, refill)
            for name, (capacity, refill) in (rate_limits or {}).items()
        }
        self._max_wait = max_wait
        self._lock = threading.Lock()

    def pace(self, action: str) -> None:
        """Take a token from the action's bucket, waiting briefly if need be."""
        bucket = self._buckets.get(action)
        if bucket is None:
            return
        with self._lock:
            wait = bucket.seconds_until(self._clock.now())
        if wait > (0.0 if action in NEVER_WAIT else self._max_wait):
            raise Throttled(
                "ClientThrottled", f"{action}: client-side rate limit, next token in {wait:.1f}s"
            )
        if wait > 0:
            self._clock.sleep(wait)
        with self._lock:
            bucket.try_take(self._clock.now())

    def launch_budget(self) -> int:
        """How many instances a RunInstances may launch now within the instance bucket."""
        bucket = self._buckets.get(INSTANCES_BUCKET)
        if bucket is None:
            return UNLIMITED_BUDGET
        with self._lock:
            return int(bucket.available(self._clock.now()) + 1e-9)

    def charge_launch(self, launched: int) -> None:
        """Charge the instance bucket for what a RunInstances launched."""
        bucket = self._buckets.get(INSTANCES_BUCKET)
        if bucket is None:
            return
        with self._lock:
            now = self._clock.now()
            bucket.try_take(now, min(launched, bucket.available(now)))
