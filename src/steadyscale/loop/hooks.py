"""Hooks the composition root may install into the loop: the named crash points.

Crash safety is tested at the worst moments (after the intent is written, after
RunInstances is sent, ...): the loop calls its hook there, a no-op unless ``app.runtime``
installs one (``testing.crashpoints``' hook, armed by an environment variable).
"""

from __future__ import annotations

from collections.abc import Callable

CrashHook = Callable[[str], None]

# Every point the loop calls its crash hook at, in the order a launch and a terminate meet
# them.
CRASH_POINTS = (
    "intent_written",  # the launch request and its nodes are in the ledger, nothing sent
    "launch_sent",  # RunInstances answered, the ids not yet recorded
    "launch_recorded",  # the ids are in the ledger
    "terminate_written",  # TERMINATING is in the ledger, nothing sent
    "terminate_sent",  # TerminateInstances answered, its answer not yet recorded
)


def no_crash(point: str) -> None:
    """The default hook: the loop goes on."""
