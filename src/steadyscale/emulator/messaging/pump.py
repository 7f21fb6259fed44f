"""Events fall due on the emulated clock whether or not anyone calls EC2: once a caller
uses SQS or EventBridge, a background thread moves every region's timeline on a few
times a second, so a consumer that only long-polls its queue still gets EC2's events.
Until then nothing runs: an emulator used for EC2 alone works as it always did.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("steadyscale.emulator")


class Pump:
    """Calls ``step`` every ``interval`` real seconds from ``start`` until ``stop``."""

    def __init__(self, step: Callable[[], None], interval: float = 0.05) -> None:
        self._step = step
        self._interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, name="steadyscale-emulator-events", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._step()
            except Exception:  # one bad step must not end the deliveries
                log.exception("emulator: delivering events failed")

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
