"""What the workload says about its nodes, as the scheduler reads it: per node, busy or
idle since when (its latest usage report still within its TTL), and the node types whose
scale-down follows the reports (``scale_down: reported``). The loop builds it from the
ledger once a tick; the core only reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class NodeUsage(NamedTuple):
    """A node's latest live report: busy, or idle since ``idle_since``."""

    busy: bool
    idle_since: float | None = None


@dataclass(frozen=True)
class Usage:
    """Live usage reports by node id, and the node types with ``scale_down: reported``."""

    nodes: Mapping[str, NodeUsage] = field(default_factory=dict)
    reported_types: frozenset[str] = frozenset()

    def busy(self, node_id: str) -> bool:
        """Reported busy within its TTL: never chosen for scale-down (I9)."""
        report = self.nodes.get(node_id)
        return report is not None and report.busy


NO_USAGE = Usage()
