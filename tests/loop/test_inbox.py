"""The threaded inbox stops without waiting out a long poll: a daemon stopping with an
``events`` block is not held back by the queue's wait (up to 20 s)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from steadyscale.errors import CloudError
from steadyscale.loop.inbox import ThreadedInbox
from steadyscale.providers.events import QueueMessage
from steadyscale.retries.clock import FakeClock


class HeldQueue:
    """A queue whose long poll answers only when the test lets it."""

    def __init__(self) -> None:
        self.polling = threading.Event()
        self.answer = threading.Event()
        self.deleted: list[str] = []

    @property
    def name(self) -> str:
        return "held"

    def receive(self, *, max_messages: int, wait_seconds: float) -> list[QueueMessage]:
        self.polling.set()
        self.answer.wait(60)
        return [QueueMessage(message_id="m-1", receipt="r-1", body="{}")]

    def delete(self, receipts: Sequence[str]) -> None:
        self.deleted.extend(receipts)


def test_closing_does_not_wait_out_a_long_poll_and_takes_nothing_it_brings() -> None:
    queue = HeldQueue()
    errors: list[CloudError] = []
    inbox = ThreadedInbox(
        queue, FakeClock(), max_messages=10, wait_seconds=20, capacity=5, on_error=errors.append
    ).start()
    assert queue.polling.wait(30)
    closing = threading.Thread(target=inbox.close)
    closing.start()
    closing.join(10)  # a join of the polling thread would take the poll's 20 s and more
    assert not closing.is_alive()
    queue.answer.set()  # the poll answers after the close: the thread ends
    inbox._thread.join(30)
    assert not inbox._thread.is_alive()
    # What the poll brought after the close is not taken (nor deleted): the queue delivers
    # it again after its visibility timeout.
    assert inbox.take(10) == []
    assert queue.deleted == []
    assert errors == []
