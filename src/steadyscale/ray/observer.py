"""What EC2 shows of the Ray cluster, folded into the book: one listing per update of Ray's
autoscaler, a lookup by id for the nodes a listing omitted (invisible is not gone), and one
for a node Ray asks about that the book lacks.
"""

from __future__ import annotations

import logging

from ray.autoscaler.tags import TAG_RAY_CLUSTER_NAME

from steadyscale.ray.book import LIVE_STATES, Node
from steadyscale.ray.shared import Shared
from steadyscale.ray.unanswered import UNANSWERED

log = logging.getLogger("steadyscale.ray")


class Observer:
    """Passive updates only: it mirrors what EC2 reports and changes nothing there."""

    def __init__(
        self,
        shared: Shared,
    ) -> None:
        self._shared = shared

    def refresh(self) -> None:
        """List the cluster's live nodes; a listing that fails leaves the book as it was."""
        try:
            listed = self._shared.cloud.list_tagged(
                TAG_RAY_CLUSTER_NAME, self._shared.cluster_name, states=LIVE_STATES
            )
        except UNANSWERED as exc:
            # Answer from what we know; the next update lists again.
            log.warning(
                "listing failed (%s); answering from the last listing", self._shared.reasons(exc)
            )
            return
        self._shared.adoption.first_listing(listed)
        now = self._shared.clock.now()
        shown, missing = self._shared.book.absorb_listing(listed, now)
        self._shared.state.forget_launches(shown)
        if missing:
            self._recheck(missing, now)

    def look_once(self) -> None:
        """A new state file lists the cluster before its first launch: it may have to
        adopt a live cluster first."""
        if not self._shared.adoption.looked:
            self.refresh()

    def _recheck(self, missing: list[str], now: float) -> None:
        """Nodes a listing omitted: not visible yet, a listing that flickers, or gone.
        One lookup by id tells which; only EC2 saying so, or a long silence, drops one."""
        try:
            shown = {i.instance_id: i for i in self._shared.cloud.describe_by_id(missing)}
        except UNANSWERED as exc:
            log.warning(
                "lookup of %d unlisted nodes failed (%s)", len(missing), self._shared.reasons(exc)
            )
            return
        dropped = self._shared.book.settle(
            missing, shown, now, visibility_timeout=self._shared.settings.visibility_timeout_seconds
        )
        if dropped:
            self._shared.state.forget_launches(dropped)

    def node(self, node_id: str) -> Node | None:
        """The node as known, else one lookup by id (no waiting): None if EC2 has nothing."""
        node = self._shared.book.get(node_id)
        if node is not None:
            return node
        try:
            shown = self._shared.cloud.describe_by_id([node_id])
        except UNANSWERED as exc:
            self._shared.reasons(exc)
            return None
        if not shown:
            return None
        return self._shared.book.view(shown[0], self._shared.cluster_name, self._shared.clock.now())

    def public_ip(self, node_id: str) -> str | None:
        """A node's public address: EC2 may assign it after launch, so while the book has
        none it is looked up by id."""
        node = self.node(node_id)
        if node is not None and node.public_ip is None:
            try:
                shown = self._shared.cloud.describe_by_id([node_id])
            except UNANSWERED as exc:
                self._shared.reasons(exc)
                shown = []
            if shown:
                self._shared.book.set_public_ip(node, shown[0].public_ip)
        return node.public_ip if node is not None else None
