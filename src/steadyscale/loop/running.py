"""The loop's cadence: a tick every ``loop_interval_seconds`` until told to stop, in slices
short enough that a stop request is honoured promptly."""

from __future__ import annotations

import threading
from collections.abc import Callable

from steadyscale.loop.report import TickReport
from steadyscale.retries.clock import Clock


class Ticking:
    """Runs ``tick`` at ``interval()``; the autoscaler is one."""

    clock: Clock

    def tick(self) -> TickReport:
        raise NotImplementedError

    def interval(self) -> float:
        raise NotImplementedError

    # ------------------------------------------------------------------ run

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until: Callable[[TickReport], bool] | None = None,
        before_tick: Callable[[], None] | None = None,
        max_ticks: int | None = None,
    ) -> TickReport | None:
        """Tick every ``loop_interval_seconds`` until ``stop`` is set or ``until`` says so."""
        report: TickReport | None = None
        ticks = 0
        while not (stop is not None and stop.is_set()):
            if before_tick is not None:
                before_tick()
            started = self.clock.now()
            report = self.tick()
            ticks += 1
            if until is not None and until(report):
                return report
            if max_ticks is not None and ticks >= max_ticks:
                return report
            wait = self.interval() - (self.clock.now() - started)
            if wait > 0:
                self._wait(wait, stop)
        return report

    def _wait(self, seconds: float, stop: threading.Event | None) -> None:
        if stop is None:
            self.clock.sleep(seconds)
            return
        # Sleep in slices so a stop request is honoured promptly.
        end = self.clock.now() + seconds
        while not stop.is_set():
            remaining = end - self.clock.now()
            if remaining <= 0:
                return
            self.clock.sleep(min(remaining, 0.2))
