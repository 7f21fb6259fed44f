"""Small retry policies: full-jitter backoff (pure) and a retry loop bounded by a deadline.

Backoff is a pure function of (attempt, random draw); the loop takes the clock and the
random source, so tests run it on a fake clock without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from steadyscale.retries.clock import Clock

T = TypeVar("T")


def full_jitter(attempt: int, *, base: float, cap: float, draw: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): uniform in [0, min(cap, base*2^n)).

    ``draw`` is a number in [0, 1), so the result is a pure function of its inputs.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    return draw * min(cap, base * (2.0 ** min(attempt, 62)))


@dataclass(frozen=True)
class Backoff:
    base: float = 0.2
    cap: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return full_jitter(attempt, base=self.base, cap=self.cap, draw=rng.random())


def retry_until(
    fetch: Callable[[], T | None],
    *,
    clock: Clock,
    deadline_seconds: float,
    backoff: Backoff,
    rng: random.Random,
) -> tuple[T | None, int]:
    """Call ``fetch`` until it returns something or the deadline passes.

    Never sleeps past the deadline; returns (result or None, attempts made).
    """
    start = clock.now()
    attempt = 0
    while True:
        result = fetch()
        attempt += 1
        if result is not None:
            return result, attempt
        remaining = deadline_seconds - (clock.now() - start)
        if remaining <= 0:
            return None, attempt
        clock.sleep(min(remaining, backoff.delay(attempt - 1, rng)))
