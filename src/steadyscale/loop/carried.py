"""Nodes carried over from a former cluster name (``steadyscale ledger carry-over``).

Their instances keep the cluster tag they were launched with: EC2 sets tags at launch only
(the IAM policy allows CreateTags nowhere else). So while any of them is live, the full
listing also lists each former name, a resend of their launch carries the tag its first
attempt carried, and an instance of a former name the ledger does not know is left alone
(said once): neither adopted nor taken for a stranger of this cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.core.lifecycle import TERMINAL, NodeRecord
from steadyscale.store.ledger import Ledger
from steadyscale.store.ownership import carried, set_carried

log = logging.getLogger("steadyscale.autoscaler")


class CarriedNodes:
    """Former cluster name -> the ids of its nodes, as the ledger keeps them."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._by_name = carried(ledger)
        self._name_of = {node: name for name, ids in self._by_name.items() for node in ids}
        self._told: set[str] = set()  # instance ids said to be left alone

    def names(self) -> frozenset[str]:
        """The former names some live node still carries: each is listed too."""
        return frozenset(self._by_name)

    def name_of(self, node_id: str) -> str | None:
        """The former name a node's instance is (or will be) tagged with; None: the
        cluster's own."""
        return self._name_of.get(node_id)

    def leave_alone(self, instances: Sequence[CloudInstance]) -> None:
        """Say once which instances of a former name the ledger does not know."""
        new = [i for i in instances if i.instance_id not in self._told]
        if not new:
            return
        self._told.update(i.instance_id for i in new)
        names = sorted({i.tags.get(TAG_CLUSTER, "") for i in new})
        log.warning(
            "leaving alone %d instance(s) tagged for former cluster name(s) %s that the "
            "ledger does not know (not adopted, not terminated): %s",
            len(new),
            ", ".join(names),
            ", ".join(i.instance_id for i in new),
        )

    def prune(self, records: Mapping[str, NodeRecord]) -> None:
        """Drop the nodes no longer live, and each former name none of whose nodes is."""
        if not self._by_name:
            return
        kept = {
            name: frozenset(
                node for node in ids if node in records and records[node].status not in TERMINAL
            )
            for name, ids in self._by_name.items()
        }
        if kept == self._by_name:
            return
        for name in sorted(n for n, ids in kept.items() if not ids):
            log.info(
                "no live node carries the tag of former cluster name %s any more: "
                "it is no longer listed",
                name,
            )
        self._by_name = {name: ids for name, ids in kept.items() if ids}
        self._name_of = {node: name for name, ids in self._by_name.items() for node in ids}
        with self.ledger.transaction():
            set_carried(self.ledger, self._by_name)
