"""What can fall due on a region's timeline: an instance's own transitions (boot done,
shutdown done, a spot interruption, a retirement's deadline, expiry from listings) and the
notices EC2 gives ahead of some of them (a warning, a rebalance recommendation, a
scheduled retirement, a failed status check)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from enum import StrEnum


class EventKind(StrEnum):
    BOOTED = "booted"
    SHUTDOWN_DONE = "shutdown_done"
    INTERRUPT = "interrupt"
    EXPIRE = "expire"
    RETIRE = "retire"  # a scheduled retirement's deadline: EC2 takes the instance
    WARN = "warn"  # a spot interruption warning
    REBALANCE = "rebalance"  # a rebalance recommendation
    RETIRE_NOTICE = "retire_notice"  # AWS Health announces a retirement
    IMPAIR = "impair"  # the instance's status checks start failing


NOTICES = frozenset(
    {EventKind.WARN, EventKind.REBALANCE, EventKind.RETIRE_NOTICE, EventKind.IMPAIR}
)


class Timeline:
    """What falls due when, in time order (ties in the order scheduled)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, str, EventKind]] = []
        self._seq = itertools.count()

    def schedule(self, at: float, instance_id: str, kind: EventKind) -> None:
        heapq.heappush(self._due, (at, next(self._seq), instance_id, kind))

    def pop_due(self, now: float) -> Iterator[tuple[float, str, EventKind]]:
        """Each entry due by ``now``, earliest first; one scheduled meanwhile for a time
        by ``now`` is yielded too."""
        while self._due and self._due[0][0] <= now:
            at, _, instance_id, kind = heapq.heappop(self._due)
            yield at, instance_id, kind
