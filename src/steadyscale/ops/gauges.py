"""Gauges of one autoscaler's metrics that stand apart from its tick: where demand stands,
what the cluster costs, and whether this replica leads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Gauge

from steadyscale.core.feasibility import Infeasible
from steadyscale.core.lifecycle import TERMINAL, NodeRecord


class CostGauge:
    """What the live nodes cost per hour by node type, at the prices they launched at."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.cost = Gauge(
            "steadyscale_cost_per_hour",
            "USD per hour of the live nodes with an instance, by node type (each at its "
            "pool's price when it launched; nodes of unknown price not counted).",
            ["node_type"],
            registry=r,
        )

    def set(self, records: Iterable[NodeRecord], node_types: Iterable[str]) -> None:
        cost = dict.fromkeys(node_types, 0.0)
        for record in records:
            if record.status in TERMINAL or record.instance_id is None:
                continue
            cost[record.node_type] = cost.get(record.node_type, 0.0) + (record.hourly_price or 0)
        for node_type, amount in cost.items():
            self.cost.labels(node_type).set(round(amount, 6))


class DemandGauges:
    """Where demand stands after a tick: demanded, unmet, and what no node type can hold,
    in all and by cause."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.bundles = Gauge("steadyscale_demand_bundles", "Resource bundles demanded.", registry=r)
        self.unmet = Gauge(
            "steadyscale_demand_unmet",
            "Bundles without a node because of limits, capacity or pacing.",
            registry=r,
        )
        self.infeasible = Gauge(
            "steadyscale_demand_infeasible",
            "Bundles no configured node type can hold (never counted as met).",
            registry=r,
        )
        self.infeasible_by_cause = Gauge(
            "steadyscale_demand_infeasible_by_cause",
            "Bundles no configured node type can hold, by the first reason: not_offered (no "
            "type offers the resource), too_large (more of it than any type offers), "
            "not_together (no type offers all of it at once), no_node_types; resource names "
            "the resource for the first two. The series add up to steadyscale_demand_infeasible.",
            ["cause", "resource"],
            registry=r,
        )
        self._infeasible_series: set[tuple[str, str]] = set()

    def set(
        self, *, demanded: int, unmet: int, infeasible: int, explained: Sequence[Infeasible]
    ) -> None:
        self.bundles.set(demanded)
        self.unmet.set(unmet)
        self.infeasible.set(infeasible)
        # Every (cause, resource) seen before and gone now reads 0, not its last value.
        counts = dict.fromkeys(self._infeasible_series, 0)
        for item in explained:
            key = (item.cause.value, item.resource or "")
            counts[key] = counts.get(key, 0) + item.count
        for (cause, resource), count in counts.items():
            self.infeasible_by_cause.labels(cause, resource).set(count)
        self._infeasible_series.update(counts)


class LeaderGauges:
    """Whether this replica leads (1) or follows (0), and the lease epoch it last saw as
    its own (0 before it ever led). A single daemon on a SQLite ledger always leads."""

    def __init__(self, r: CollectorRegistry) -> None:
        self.leader = Gauge(
            "steadyscale_leader", "1 while this replica leads, 0 while it follows.", registry=r
        )
        self.epoch = Gauge(
            "steadyscale_lease_epoch",
            "The epoch of the lease this replica holds or last held (0: never led).",
            registry=r,
        )
        self.leader.set(1)

    def set(self, *, leading: bool, epoch: int | None) -> None:
        self.leader.set(1 if leading else 0)
        if epoch is not None:
            self.epoch.set(epoch)
