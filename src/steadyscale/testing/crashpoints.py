"""Named points where a test can make the daemon die as if by ``kill -9``.

Crash-safety is only believable if it is tested at the worst moments: after the intent is
written, after RunInstances is sent but before the ids are recorded, during terminate.
Setting ``STEADYSCALE_CRASH_AT=<point>`` (optionally ``<point>:<n>`` for the n-th time the
point is reached) makes the process SIGKILL itself there. Unset, this costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

from steadyscale.loop.hooks import CRASH_POINTS

ENV = "STEADYSCALE_CRASH_AT"
POINTS = CRASH_POINTS  # the points the loop calls its crash hook at
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """The loop's crash hook in a daemon (``app.runtime`` installs it)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
