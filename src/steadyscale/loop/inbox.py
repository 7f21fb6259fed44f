"""How received event messages reach the tick, off its critical path: ``PolledInbox``
receives at the start of a tick without waiting (the virtual clock, tests), and
``ThreadedInbox`` long-polls the queue on a thread of its own into a bounded buffer the
tick drains. Either deletes a message only when the tick says its effect is in the ledger."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from steadyscale.errors import CloudError
from steadyscale.providers.events import EventQueue, QueueMessage
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.events")

# Told of a receive that failed (counted and logged by the caller); polling carries on.
_OnError = Callable[[CloudError], None]


class Inbox(Protocol):
    def take(self, limit: int) -> list[QueueMessage]:
        """Up to ``limit`` messages received since the last take (never waits)."""
        ...

    def delete(self, receipts: Sequence[str]) -> None: ...

    def flowing(self) -> bool:
        """Whether the queue answered lately: then the full listing may run less often."""
        ...

    def close(self) -> None: ...


class PolledInbox:
    """Receives on the tick's own thread, without waiting, at most ``limit`` messages."""

    def __init__(self, queue: EventQueue, *, max_messages: int, on_error: _OnError) -> None:
        self.queue = queue
        self.max_messages = max_messages
        self.on_error = on_error
        self._flowing = False

    def take(self, limit: int) -> list[QueueMessage]:
        taken: list[QueueMessage] = []
        while len(taken) < limit:
            try:
                batch = self.queue.receive(
                    max_messages=min(self.max_messages, limit - len(taken)), wait_seconds=0
                )
            except CloudError as exc:
                self._flowing = False
                self.on_error(exc)
                break
            self._flowing = True
            taken.extend(batch)
            if not batch:
                break
        return taken

    def delete(self, receipts: Sequence[str]) -> None:
        self.queue.delete(receipts)

    def flowing(self) -> bool:
        return self._flowing

    def close(self) -> None:
        return None


class ThreadedInbox:
    """A thread long-polls the queue (``wait_seconds``) into a buffer of at most
    ``capacity`` messages; it stops receiving while the buffer is full, so a slow tick
    leaves messages in the queue, where they belong."""

    def __init__(
        self,
        queue: EventQueue,
        clock: Clock,
        *,
        max_messages: int,
        wait_seconds: float,
        capacity: int,
        on_error: _OnError,
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.max_messages = max_messages
        self.wait_seconds = wait_seconds
        self.capacity = capacity
        self.on_error = on_error
        self._buffer: deque[QueueMessage] = deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._receiving = False  # inside a long poll (under _lock)
        self._last_answer: float | None = None
        self._thread = threading.Thread(target=self._run, name="steadyscale-events", daemon=True)

    def start(self) -> ThreadedInbox:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._room:
                while len(self._buffer) >= self.capacity and not self._stop.is_set():
                    self._room.wait(0.5)
                if self._stop.is_set():
                    return
                self._receiving = True
            try:
                batch = self.queue.receive(
                    max_messages=self.max_messages, wait_seconds=self.wait_seconds
                )
            except CloudError as exc:
                with self._lock:
                    self._last_answer = None
                self.on_error(exc)
                self._stop.wait(min(5.0, max(self.wait_seconds, 1.0)))
                continue
            except Exception:  # the thread must outlive any one failure
                log.exception("event queue receive failed")
                self._stop.wait(5.0)
                continue
            finally:
                with self._lock:
                    self._receiving = False
            with self._lock:
                if self._stop.is_set():
                    return  # closed meanwhile: none of it is taken, the queue keeps it
                self._last_answer = self.clock.now()
                self._buffer.extend(batch)

    def take(self, limit: int) -> list[QueueMessage]:
        with self._room:
            taken = [self._buffer.popleft() for _ in range(min(limit, len(self._buffer)))]
            self._room.notify_all()
        return taken

    def delete(self, receipts: Sequence[str]) -> None:
        self.queue.delete(receipts)

    def flowing(self) -> bool:
        with self._lock:
            last = self._last_answer
        # A long poll answers within wait_seconds; a few of them missed means trouble.
        return last is not None and self.clock.now() - last <= 3 * self.wait_seconds + 10.0

    def close(self) -> None:
        """Stop receiving. A long poll under way is not waited for (a daemon stopping
        would wait up to ``wait_seconds``): the thread ends when it answers, and what it
        brings is never taken, so the queue delivers it again after its visibility
        timeout, as for any message not deleted."""
        with self._room:
            self._stop.set()
            self._room.notify_all()
            polling = self._receiving
        if not polling and self._thread.is_alive():
            self._thread.join(timeout=5.0)
