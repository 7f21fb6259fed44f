"""Hooks the composition root may install into the loop: the named crash points, and the
seam a drain hook will take.

Crash safety is tested at the worst moments (after the intent is written, after
RunInstances is sent, ...): the loop calls its hook there, a no-op unless ``app.runtime``
installs one (``testing.crashpoints``' hook, armed by an environment variable).
"""

from __future__ import annotations

from collections.abc import Callable

from steadyscale.core.lifecycle import NodeRecord

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


# Whether a node the autoscaler lets go may be terminated now. No drain exists yet (another
# change adds one): a hook would ask the workload to move off the node, and say yes once it
# has. Until then every node is released at once.
DrainHook = Callable[[NodeRecord], bool]


def no_drain(record: NodeRecord) -> bool:
    """The default: nothing to wait for."""
    return True
