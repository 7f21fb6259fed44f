"""Waiting for a real component (a process, a server, a queue) to reach a state, on the
wall clock: the one poll loop of the test harnesses. (Unit tests never wait: they run on
an injected clock.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL = 0.05


class WaitTimeoutError(RuntimeError):
    """What was waited for did not come in time."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    error: type[Exception] = WaitTimeoutError,
    poll: float = POLL,
) -> T:
    """Poll ``condition`` until it gives something truthy, and return that; past
    ``timeout`` seconds, ``error`` saying what was waited for. The condition is asked once
    more at the deadline, so a slow machine never fails a wait that just came true."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)
