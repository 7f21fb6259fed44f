"""What ``steadyscale status --json`` prints: ``StatusReport`` and its parts.
``docs/status.schema.json`` is generated from it (``python -m steadyscale.app.docgen``), so
the published schema and the code cannot drift; ``ops.status`` fills it in and draws it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from steadyscale.core.lifecycle import TERMINAL, Status

# Every status a live node can have, in lifecycle order; finished nodes are not counted.
COLUMNS: list[str] = [s.value for s in Status if s not in TERMINAL]
FORMAT_VERSION = 1
FAILURES_SHOWN = 5


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeTypeStatus(_Out):
    instance_type: str = Field(description="EC2 instance type of the node type")
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=0)
    counts: dict[str, int] = Field(
        description="nodes by lifecycle status; a key for every status in `statuses`"
    )
    total: int = Field(ge=0, description="nodes of this type not yet finished")
    configured: bool = Field(
        True, description="false: the config no longer has this node type; its nodes retire"
    )
    retiring: int = Field(
        0, ge=0, description="of its nodes, those a config change replaces (see `retiring`)"
    )
    cost_per_hour: float = Field(
        default=0.0,
        ge=0,
        description="USD per hour of its live nodes that have an instance, each at the price "
        "of its pool when it launched (on-demand table or spot price)",
    )
    unpriced: int = Field(
        default=0,
        ge=0,
        description="of its live nodes with an instance, those whose price is unknown",
    )


class DemandEntry(_Out):
    bundle: dict[str, float] = Field(description="resources of one bundle, e.g. {CPU: 2}")
    count: int = Field(ge=0)


class FailureEntry(_Out):
    node_id: str
    node_type: str | None
    instance_id: str | None = Field(description="EC2 instance id, if the node had one")
    status: str = Field(
        description="launch_failed, interrupted or lost; terminating for a `held` node"
    )
    at: float = Field(
        description="when, in the autoscaler clock's seconds since the epoch; for a `held` "
        "node, when its termination was asked"
    )
    reason: str
    held: bool = Field(
        False,
        description="a node EC2 refuses to terminate (termination protection, a policy): "
        "listed first, until it is terminated, however old the refusal",
    )


class NotVisibleEntry(_Out):
    node_id: str
    node_type: str
    instance_id: str | None
    launched_at: float | None = Field(description="when RunInstances returned its id")
    seconds_since_launch: float = Field(ge=0)


class InfeasibleEntry(_Out):
    bundle: dict[str, float] = Field(description="resources of one bundle, e.g. {GPU: 1}")
    count: int = Field(ge=0)
    cause: str = Field(
        description="the first reason: not_offered (no node type offers the resource), "
        "too_large (more of it than any node type offers), not_together (no node type "
        "offers all of it at once) or no_node_types"
    )
    resource: str | None = Field(description="the resource not_offered or too_large names")
    why: str = Field(description='in words, e.g. "no node type offers GPU"')


class UnknownEntry(_Out):
    instance_id: str
    reason: str = Field(
        description="why the ledger cannot explain it: other_ledger (it carries another "
        "ledger's id), no_ledger_id (it carries none), unknown_request (this ledger's id, "
        "but a launch request this ledger has no record of)"
    )
    state: str = Field(description="EC2's state when the daemon last listed it")
    node_type: str | None = Field(description="its steadyscale:node-type tag, if any")
    instance_type: str | None
    ledger_id: str | None = Field(description="the ledger id it carries, if any")


class MarkEntry(_Out):
    node_id: str
    node_type: str
    instance_id: str | None
    kind: str = Field(
        description="warned (a spot interruption warning: EC2 reclaims it at `deadline`; "
        "its replacement is under way), or what has it replaced ahead of time: rebalance "
        "(a rebalance recommendation), retirement (a scheduled retirement) or impaired "
        "(failing status checks)"
    )
    at: float = Field(description="when EC2's event happened, seconds since the epoch")
    deadline: float | None = Field(description="when EC2 acts on the node, if it said")


class LeaseEntry(_Out):
    holder: str = Field(description="the replica id that took the lease last")
    epoch: int = Field(description="the lease's epoch, which only grows")
    expires_in_seconds: float = Field(
        description="until it expires, by the database's clock; negative once expired (no "
        "replica leads until one takes it)"
    )


class Progress(_Out):
    unmet: int = Field(ge=0, description="bundles left without a node by limits or pacing")
    infeasible: int = Field(
        ge=0, description="bundles no node type can hold: never met, whatever else holds"
    )
    infeasible_demand: list[InfeasibleEntry] = Field(
        default_factory=list,
        description="the bundles counted in `infeasible`, by shape, each with why",
    )
    feasible_met: bool = Field(
        False, description="all demand that fits a node type sits on ready nodes"
    )
    capacity_met: bool = Field(
        description="all demand sits on ready nodes: false while `infeasible` is above 0"
    )
    since: float = Field(
        description="the tick since which it stands so (seconds since the "
        "epoch): the daemon writes it only when it changes"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_an_earlier_daemon(cls, data: Any) -> Any:
        """An earlier daemon wrote capacity_met for the demand that fits, infeasible or not:
        read it as feasible_met, and as capacity_met only with nothing infeasible."""
        if isinstance(data, dict) and "feasible_met" not in data and "capacity_met" in data:
            met = bool(data["capacity_met"])
            data = {**data, "feasible_met": met, "capacity_met": met and not data["infeasible"]}
        return data


class StatusReport(_Out):
    """What ``steadyscale status --json`` prints: one object."""

    model_config = ConfigDict(title="steadyscale status")

    format_version: int = Field(FORMAT_VERSION, description="bumped on incompatible changes")
    cluster_name: str
    generated_at: float = Field(description="seconds since the epoch")
    statuses: list[str] = Field(description="the statuses counted, in lifecycle order")
    node_types: dict[str, NodeTypeStatus]
    totals: dict[str, int] = Field(description="nodes by status over every node type")
    cost_per_hour: float = Field(
        default=0.0, ge=0, description="USD per hour of the cluster's live nodes, every node type"
    )
    demand: list[DemandEntry] = Field(description="the demand the autoscaler works toward")
    demand_entries: dict[str, list[DemandEntry]] = Field(
        default_factory=dict,
        description="the demand by named entry (its sum is `demand`): `default` holds what "
        "`steadyscale request` set, each workload its own through the API",
    )
    pending_demand: int = Field(ge=0, description="bundles demanded, all entries together")
    demand_updated_at: float | None
    progress: Progress | None = Field(
        description="where demand stood at the daemon's last tick; null before its first"
    )
    recent_failures: list[FailureEntry] = Field(
        description=f"the nodes EC2 refuses to terminate (`held`; up to {FAILURES_SHOWN}), then "
        f"the latest {FAILURES_SHOWN} moves to a failure status; each part newest first"
    )
    refused_terminations: int = Field(
        0, ge=0, description="nodes EC2 refuses to terminate, all of them (some may be unlisted)"
    )
    not_visible: int = Field(
        ge=0, description="launched nodes EC2 has not shown yet (eventual consistency)"
    )
    oldest_not_visible: NotVisibleEntry | None
    retiring: int = Field(
        0,
        ge=0,
        description="live nodes a config change replaces (their node type removed, or its "
        "node_config changed): no new demand goes on them, and each is terminated once ready "
        "nodes of a configured type hold its demand",
    )
    retiring_reasons: dict[str, int] = Field(
        default_factory=dict, description="retiring nodes by why they retire"
    )
    relabel_pending: dict[str, str] = Field(
        default_factory=dict,
        description="node types this config renames (old -> new): the daemon re-labels their "
        "nodes when it starts with it",
    )
    ledger_id: str | None = Field(
        None,
        description="the ledger's id, tagged steadyscale:ledger-id on every instance it "
        "launches; null in a ledger no daemon of this version opened yet",
    )
    lease: LeaseEntry | None = Field(
        None,
        description="the replicas' leader lease of a PostgreSQL ledger; null for a file "
        "ledger, or before any replica took it",
    )
    events: list[MarkEntry] = Field(
        default_factory=list,
        description="live nodes EC2's events marked (with `events:` in the config), the "
        "soonest deadline first; a node marked twice is listed for each kind",
    )
    unknown_instances: list[UnknownEntry] = Field(
        default_factory=list,
        description="live instances tagged with the cluster that the ledger cannot explain, "
        "as the daemon last listed them: reported and left alone, never terminated "
        "(`steadyscale ledger adopt` takes them over)",
    )
