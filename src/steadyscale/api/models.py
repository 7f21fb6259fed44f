"""The API's request and answer bodies (pydantic): the status is ``status --json``'s
``StatusReport`` and demand is listed as its ``DemandEntry``, so the API, the CLI and the
published schemas cannot drift apart. ``docs/openapi.json`` is generated from them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from steadyscale.core.resources import DemandItem
from steadyscale.ops.status_report import DemandEntry

ENTRY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Problem(_Out):
    """Every refusal: one line saying what is wrong and how to fix it."""

    detail: str


class DemandBody(_In):
    """A list of bundles and counts: the whole demand, or one named entry of it."""

    demand: list[DemandItem] = Field(
        max_length=1000, description="bundles and how many of each; [] demands nothing"
    )


class DemandAnswer(_Out):
    demand: list[DemandEntry] = Field(
        description="the demand the autoscaler works toward: the sum of the entries"
    )
    entries: dict[str, list[DemandEntry]] = Field(
        description="the demand by entry name; `default` holds what `steadyscale request` "
        "or PUT /api/v1/demand set"
    )
    pending_demand: int = Field(ge=0, description="bundles demanded, all entries together")
    updated_at: float | None = Field(description="when it last changed (seconds since epoch)")


class HistoryEntryOut(_Out):
    status: str
    at: float
    reason: str


class UsageOut(_Out):
    """What the workload last reported for a node, within its TTL."""

    busy: bool
    bundles: list[dict[str, float]]
    reported_at: float
    expires_at: float
    idle_since: float | None
    reporter: str


class NodeOut(_Out):
    node_id: str
    instance_id: str | None
    node_type: str
    status: str
    instance_type: str | None
    availability_zone: str | None
    private_ip: str | None
    ready: bool = Field(description="the node passed its health check and takes demand")
    hourly_price: float | None = Field(description="USD per hour, when known")
    reason: str | None = Field(description="why the node is where it is: its last move's reason")
    history: list[HistoryEntryOut]
    usage: UsageOut | None = Field(description="the workload's report for it, if any is live")


class NodesAnswer(_Out):
    nodes: list[NodeOut]


class UsageReportIn(_In):
    node: str = Field(min_length=1, max_length=200, description="node id or instance id")
    busy: bool = Field(description="the workload runs something on the node")
    bundles: list[dict[str, float]] = Field(
        default_factory=list, max_length=1000, description="what it runs there, if it says"
    )
    ttl_seconds: float = Field(
        default=60.0, gt=0, le=86400, description="the report holds this long"
    )


class UsageBody(_In):
    reports: list[UsageReportIn] = Field(max_length=10000)


class UsageAnswer(_Out):
    accepted: int = Field(ge=0)


class DrainAnswer(_Out):
    node_id: str
    status: str = Field(description="the node's status after the request")
    message: str


class HistoryPoint(_Out):
    minute: float = Field(description="start of the minute, seconds since the epoch")
    counts: dict[str, int] = Field(description="nodes by status at the minute's last tick")
    demand: int = Field(ge=0, description="bundles demanded")
    unmet: int = Field(ge=0, description="bundles not yet placed on ready nodes")
    ready: int = Field(ge=0, description="ready nodes")


class HistoryAnswer(_Out):
    points: list[HistoryPoint]


class EventOut(_Out):
    """One server-sent event's data (its `event:` line is `kind`)."""

    id: int
    at: float
    kind: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
