"""The per node type rows of ``steadyscale status``: nodes by status, the nodes a config
change retires, node types the config no longer has while their nodes live, and what each
type's live nodes cost per hour."""

from __future__ import annotations

from collections import Counter

from steadyscale.config import ClusterConfig
from steadyscale.core.changes import ChangePlan, Fate, decode_snapshot
from steadyscale.core.lifecycle import TERMINAL, NodeRecord
from steadyscale.ops.status_report import COLUMNS, NodeTypeStatus
from steadyscale.store.ledger import Ledger


def node_type_rows(
    config: ClusterConfig,
    ledger: Ledger,
    counts: dict[str, dict[str, int]],
    plan: ChangePlan,
) -> dict[str, NodeTypeStatus]:
    """A row per configured node type, then one per node type the config no longer has
    whose nodes still live (so that they are never invisible)."""
    retiring = Counter(f.node_type for f in plan.fates.values() if f.fate is Fate.RETIRING)

    def row(name: str, instance_type: str, low: int, high: int) -> NodeTypeStatus:
        of_type = counts.get(name, {})
        return NodeTypeStatus(
            instance_type=instance_type,
            min_workers=low,
            max_workers=high,
            counts={c: of_type.get(c, 0) for c in COLUMNS},
            total=sum(of_type.get(c, 0) for c in COLUMNS),
            configured=name in config.available_node_types,
            retiring=retiring[name],
        )

    rows = {
        name: row(name, t.instance_type, t.min_workers, t.max_workers)
        for name, t in config.available_node_types.items()
    }
    known = decode_snapshot(ledger.node_types()) or {}
    for name in sorted(counts.keys() - rows.keys()):
        if any(counts[name].get(c, 0) for c in COLUMNS):
            definition = known.get(name)
            instance = definition.node_config.get("InstanceType") if definition else None
            rows[name] = row(name, str(instance or "-"), 0, 0)
    return rows


def priced_rows(
    rows: dict[str, NodeTypeStatus], records: list[NodeRecord]
) -> dict[str, NodeTypeStatus]:
    """Each node type's cost per hour: the prices its live nodes were launched at."""
    cost: dict[str, float] = {}
    unpriced: Counter[str] = Counter()
    for record in records:
        if record.instance_id is None or record.status in TERMINAL:
            continue
        if record.hourly_price is None:
            unpriced[record.node_type] += 1
        else:
            cost[record.node_type] = cost.get(record.node_type, 0.0) + record.hourly_price
    return {
        name: row.model_copy(
            update={"cost_per_hour": round(cost.get(name, 0.0), 4), "unpriced": unpriced[name]}
        )
        for name, row in rows.items()
    }
