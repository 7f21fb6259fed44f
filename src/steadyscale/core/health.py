"""What a node's health probes concluded, as the reconciler reads it (``ops.health`` probes).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HealthVerdict:
    passed: bool  # the last probe passed
    failures: int  # consecutive failed probes that count (after the grace period)
    failing: bool  # failures reached the node type's failure_threshold
    probes: int
