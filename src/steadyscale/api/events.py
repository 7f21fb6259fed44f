"""What the API streams and charts: a bounded ring of events (the loop's decisions and
every node's state change) that server-sent-event clients read at their own pace, and
per-minute samples of the cluster for the web page. Publishing is an append under a lock:
a slow or stuck client never holds a tick back (it misses what fell off the ring)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from steadyscale.api.models import EventOut, HistoryPoint

RING = 2000  # events kept for clients that lag
MINUTES = 24 * 60  # per-minute samples kept


class EventHub:
    """The last ``size`` events, each with a sequence number clients resume from."""

    def __init__(self, size: int = RING) -> None:
        self._ring: deque[EventOut] = deque(maxlen=size)
        self._next = 1
        self._lock = threading.Lock()

    def publish(
        self, at: float, kind: str, message: str, data: Mapping[str, Any] | None = None
    ) -> None:
        with self._lock:
            self._ring.append(
                EventOut(id=self._next, at=at, kind=kind, message=message, data=dict(data or {}))
            )
            self._next += 1

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next - 1

    def after(self, last_id: int, limit: int = 500) -> list[EventOut]:
        """Events after ``last_id``, oldest first, at most ``limit``."""
        with self._lock:
            if not self._ring or self._ring[-1].id <= last_id:
                return []
            first = self._ring[0].id
            start = max(0, last_id + 1 - first)
            return [self._ring[i] for i in range(start, min(len(self._ring), start + limit))]


class Samples:
    """The cluster at each minute's last tick: nodes by status, demand, unmet, ready."""

    def __init__(self, size: int = MINUTES) -> None:
        self._points: deque[HistoryPoint] = deque(maxlen=size)
        self._lock = threading.Lock()

    def note(self, at: float, counts: Mapping[str, int], demand: int, unmet: int) -> None:
        minute = float(int(at // 60) * 60)
        point = HistoryPoint(
            minute=minute,
            counts=dict(counts),
            demand=demand,
            unmet=unmet,
            ready=counts.get("ready", 0),
        )
        with self._lock:
            if self._points and self._points[-1].minute == minute:
                self._points[-1] = point
            else:
                self._points.append(point)

    def points(self, minutes: int) -> list[HistoryPoint]:
        with self._lock:
            return list(self._points)[-minutes:]
