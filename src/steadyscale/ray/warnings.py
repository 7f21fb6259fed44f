"""EC2's spot interruption warnings for the Ray provider, read from the SQS queue its
``events`` key names: a warned node is reported terminating at once (left out of
``non_terminated_nodes``, ``is_terminated`` true), so Ray's autoscaler replaces it during
the two minutes before EC2 takes it. Other events are of no use here and are deleted.

The warnings are kept in memory until their deadline (plus a margin): a provider that
restarts meanwhile learns of the reclaim from EC2 itself, as without events.
"""

from __future__ import annotations

import logging

from steadyscale.config import EventsConfig
from steadyscale.core.events import InterruptionWarning, Malformed, parse_event
from steadyscale.errors import CloudError
from steadyscale.providers.events import EventQueue
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.ray")

# How long a warning is kept past its deadline: EC2 may take a little longer to show it.
_MARGIN_SECONDS = 600.0


class Forewarnings:
    """The instances EC2 warned it will reclaim, by id, with the deadline."""

    def __init__(self, config: EventsConfig, queue: EventQueue, clock: Clock) -> None:
        self.config = config
        self.queue = queue
        self.clock = clock
        self._warned: dict[str, float] = {}

    def refresh(self) -> None:
        """Take what the queue holds now (without waiting, at most ``max_events_per_tick``
        messages); a warning is kept before its message is deleted."""
        taken = 0
        while taken < self.config.max_events_per_tick:
            try:
                batch = self.queue.receive(max_messages=self.config.max_messages, wait_seconds=0)
            except CloudError as exc:
                log.warning("event queue %s: %s; carrying on without events", self.queue.name, exc)
                return
            if not batch:
                break
            taken += len(batch)
            for message in batch:
                event = parse_event(message.body)
                if isinstance(event, InterruptionWarning):
                    self._warned.setdefault(event.instance_id, event.deadline)
                elif isinstance(event, Malformed) and event.kind == "malformed":
                    log.warning("event message %s dropped: %s", message.message_id, event.reason)
            try:
                self.queue.delete([m.receipt for m in batch])
            except CloudError as exc:  # they come back, and are read again to the same effect
                log.warning("event queue %s: %s", self.queue.name, exc)
        now = self.clock.now()
        self._warned = {i: d for i, d in self._warned.items() if now <= d + _MARGIN_SECONDS}

    def warned(self, instance_id: str) -> bool:
        return instance_id in self._warned

    @property
    def instance_ids(self) -> frozenset[str]:
        return frozenset(self._warned)
