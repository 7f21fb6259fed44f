"""Where EC2's events are read from: the ``EventQueue`` protocol (an SQS queue fed by
EventBridge), which the loop reaches only through it.

At-least-once, as SQS is: a message received and not deleted comes back after the queue's
visibility timeout, so the loop deletes one only after its effect is in the ledger, and
handles a message it sees twice as it handled the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt: str  # the receipt handle that deletes this delivery of it
    body: str


class EventQueue(Protocol):
    """A queue of EC2's events. Errors are ``CloudError``s, as the provider's."""

    @property
    def name(self) -> str:
        """How messages name the queue (its URL or name, never a credential)."""
        ...

    def receive(self, *, max_messages: int, wait_seconds: float) -> list[QueueMessage]:
        """Up to ``max_messages`` messages, waiting up to ``wait_seconds`` for the first."""
        ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Delete the deliveries ``receipts`` name (a receipt already deleted is no error)."""
        ...
