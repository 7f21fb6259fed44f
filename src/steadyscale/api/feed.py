"""Feeds the event ring from the ledger: a thread that reads the node state changes the
ledger recorded since it last looked (whoever wrote them: this daemon's loop, or the
leader while this replica follows) and publishes each as a ``node`` event."""

from __future__ import annotations

import logging
import threading

from steadyscale.api.events import EventHub
from steadyscale.store import api_records
from steadyscale.store.ledger import Ledger

log = logging.getLogger("steadyscale.api")
POLL_SECONDS = 0.5


class MovesFeed:
    def __init__(
        self, ledger: Ledger, hub: EventHub, *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.ledger = ledger
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.last = api_records.last_move_id(ledger.store)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steadyscale-api-feed", daemon=True)

    def start(self) -> MovesFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def poll(self) -> int:
        """Publish what the ledger recorded since the last poll; how many moves."""
        moves = api_records.moves_after(self.ledger.store, self.last)
        for move in moves:
            self.hub.publish(
                move.at,
                "node",
                f"{move.node_id} {move.status}: {move.reason}",
                {
                    "node_id": move.node_id,
                    "node_type": move.node_type,
                    "instance_id": move.instance_id,
                    "status": move.status,
                    "reason": move.reason,
                },
            )
            self.last = move.id
        return len(moves)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                while self.poll() and not self._stop.is_set():
                    pass
            except Exception as exc:  # the ledger away for a moment: try again next poll
                log.debug("event feed: %s", exc)
