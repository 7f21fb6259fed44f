"""A state file that is new in front of a live cluster: the file before it was lost (deleted,
another host, another ``state_path``), and what it knew with it.

The provider never terminates a node because its state file does not know it: the nodes
EC2 lists are adopted into the book with the tags EC2 shows (Ray keeps them, with their
node kind, node type and launch config), and Ray decides about them as about any other.
What EC2 does not list yet (instances launched just before the loss, launches that were
never answered) no file can show; so that Ray does not launch them again, a new file that
finds worker nodes another state file launched holds its launches for
``lost_state_hold_seconds``, long enough for EC2 to show them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from ray.autoscaler.tags import NODE_KIND_HEAD, TAG_RAY_NODE_KIND

from steadyscale.core.instances import TAG_LEDGER, CloudInstance
from steadyscale.ray.journal import StateFile

log = logging.getLogger("steadyscale.ray")


def launched_elsewhere(listed: Sequence[CloudInstance], ledger_id: str) -> list[str]:
    """The worker nodes of a listing that another state file (or a version of the provider
    before files had an id) launched. Head nodes are left out: ``ray up`` launches the head
    from another machine, with a state file of its own."""
    return [
        i.instance_id
        for i in listed
        if i.tags.get(TAG_RAY_NODE_KIND) != NODE_KIND_HEAD and i.tags.get(TAG_LEDGER) != ledger_id
    ]


class Adoption:
    """Looks at the first listing of a new state file, once: warns when it adopts nodes
    another file launched, and from then on says how long launches wait."""

    def __init__(
        self, *, path: str, state: StateFile, opened_at: float, hold_seconds: float
    ) -> None:
        self._path = path
        self._state = state
        self._opened_at = opened_at
        self._hold_seconds = hold_seconds
        self._lock = threading.Lock()
        # A file that was there already has nothing to adopt, but keeps a hold it began.
        self._looked = not state.is_new
        self._hold_until: float | None = None if state.is_new else state.hold_until()
        self.adopted: tuple[str, ...] = ()

    @property
    def looked(self) -> bool:
        """Whether the first listing was seen (always, for a file that was there)."""
        with self._lock:
            return self._looked

    def first_listing(self, listed: Sequence[CloudInstance]) -> None:
        """A listing of the cluster's live nodes; only the first one of a new file counts."""
        with self._lock:
            if self._looked:
                return
            self._looked = True
            self.adopted = tuple(launched_elsewhere(listed, self._state.ledger_id))
            if not self.adopted:
                return
            self._hold_until = self._opened_at + self._hold_seconds
            self._state.set_hold_until(self._hold_until)
        log.warning(
            "state file %s is new, but the cluster has %d live worker nodes another state file "
            "launched (was the file lost, or moved to another host or path?): adopted them "
            "from their EC2 tags, nothing is terminated for being unknown; launches wait "
            "%.0f s from the start, for nodes EC2 does not list yet",
            self._path,
            len(self.adopted),
            self._hold_seconds,
        )

    def wait(self, now: float) -> float:
        """Seconds launches still wait: until the hold ends if the new file adopted nodes,
        or has seen no listing yet (it cannot tell); else 0."""
        with self._lock:
            if self._looked and self._hold_until is None:
                return 0.0
            return max(0.0, (self._hold_until or self._opened_at + self._hold_seconds) - now)
