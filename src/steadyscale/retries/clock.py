"""Clocks: the one place that reads time, so every delay can be injected or scaled.

Everything time-dependent takes a ``Clock``. The daemon uses ``WallClock`` (its times go
into the ledger and must survive a restart); the emulator uses ``ScaledClock`` to run a
scenario faster than real time; tests use ``FakeClock``, which records sleeps instead of
sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A source of seconds. ``now()`` is monotonic, in the clock's own seconds."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WallClock:
    """Real seconds since the epoch: what the ledger stores, so times survive a restart."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class MonotonicClock:
    """Real seconds that never jump with the wall clock (NTP steps, an operator's
    ``date``): what a leader measures its lease's trust on."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ScaledClock:
    """Emulated seconds that pass ``1 / time_scale`` times as fast as real ones.

    With ``time_scale=0.1`` a delay of 30 emulated seconds takes 3 real seconds, so every
    delay of a scenario shrinks alike. ``now()`` starts at ``origin`` when the clock is made
    (0 by default; pass ``time.time()`` for epoch-like readings).
    """

    def __init__(self, time_scale: float = 1.0, *, origin: float = 0.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self.origin = origin
        self._start = time.monotonic()

    def now(self) -> float:
        return self.origin + (time.monotonic() - self._start) / self.time_scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.time_scale)


class FakeClock:
    """A clock that moves only when told to; ``sleep`` advances it and is recorded."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if seconds > 0:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
