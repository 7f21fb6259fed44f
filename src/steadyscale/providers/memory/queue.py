"""An event queue in process, on a clock, with SQS's delivery: a received message is
hidden for the visibility timeout and comes back unless deleted. The memory backend's
queue (tests, the simulator and benchmarks on the virtual clock)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from steadyscale.providers.events import QueueMessage
from steadyscale.retries.clock import Clock


@dataclass
class _Stored:
    message_id: str
    body: str
    visible_at: float
    receipt: str | None = None


class MemoryQueue:
    """Messages in arrival order; ``send`` puts one in (what EventBridge's target does)."""

    def __init__(self, clock: Clock, *, visibility_timeout: float = 30.0, name: str = "memory"):
        self.clock = clock
        self.visibility_timeout = visibility_timeout
        self._name = name
        self._messages: list[_Stored] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.calls = 0
        self.deleted = 0

    @property
    def name(self) -> str:
        return self._name

    def send(self, body: str, *, delay: float = 0.0) -> str:
        with self._lock:
            message_id = f"m-{next(self._ids)}"
            self._messages.append(_Stored(message_id, body, self.clock.now() + delay))
            return message_id

    def receive(self, *, max_messages: int, wait_seconds: float) -> list[QueueMessage]:
        # No wait: a receive on the virtual clock answers at once with what is there.
        now = self.clock.now()
        taken: list[QueueMessage] = []
        with self._lock:
            self.calls += 1
            for stored in self._messages:
                if len(taken) >= max_messages:
                    break
                if stored.visible_at <= now:
                    stored.receipt = f"{stored.message_id}/{next(self._ids)}"
                    stored.visible_at = now + self.visibility_timeout
                    taken.append(QueueMessage(stored.message_id, stored.receipt, stored.body))
        return taken

    def delete(self, receipts: Sequence[str]) -> None:
        wanted = set(receipts)
        with self._lock:
            self.calls += 1
            kept = [m for m in self._messages if m.receipt not in wanted]
            self.deleted += len(self._messages) - len(kept)
            self._messages = kept

    def __len__(self) -> int:
        return len(self._messages)
