"""A config change against a ledger: the plan for its live nodes (``core.changes``) from
what the ledger keeps (the node types of the daemon's last start, the launch parameters
of each live node), and the plan applied when the daemon starts (the renamed types'
nodes re-labelled and the new snapshot kept, in one transaction). ``status`` and
``validate`` read the plan from a ledger opened read-only; only the daemon applies it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from steadyscale.core.changes import (
    ChangePlan,
    DefinesNodes,
    LiveNode,
    decode_snapshot,
    encode_snapshot,
    launched_with,
    plan_changes,
)
from steadyscale.core.lifecycle import TERMINAL, NodeRecord
from steadyscale.store.ledger import Ledger


def change_plan(
    ledger: Ledger,
    node_types: Mapping[str, DefinesNodes],
    records: Iterable[NodeRecord] | None = None,
) -> ChangePlan:
    """What ``node_types`` would do to the ledger's live nodes (``records``, when the
    caller holds them already)."""
    live = [r for r in (ledger.nodes() if records is None else records) if r.status not in TERMINAL]
    specs = {
        request_id: launched_with(spec) for request_id, spec in ledger.live_launch_specs().items()
    }
    nodes = [LiveNode(r.node_id, r.node_type, specs.get(r.request_id or "")) for r in live]
    return plan_changes(
        snapshot=decode_snapshot(ledger.node_types()), nodes=nodes, node_types=node_types
    )


def apply_plan(ledger: Ledger, plan: ChangePlan) -> None:
    """Re-label the renamed types' live nodes and keep the new snapshot, in one transaction."""
    ledger.start_with_node_types(encode_snapshot(plan.snapshot), plan.renames)
