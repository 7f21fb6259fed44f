"""The cluster config's models: a YAML file close to Ray's cluster YAML, in pydantic.

Each model checks its own keys; ``loading`` reads a file into them and ``validation``
checks what a model alone cannot (instance types, RunInstances parameters).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from steadyscale.core.resources import (
    DemandItem,
    amounts_or_error,
    fits,
    format_bundle,
)
from steadyscale.retries.tokenbucket import EC2_REQUEST_BUCKETS, EC2_RESOURCE_BUCKETS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HealthCheck(_Strict):
    """How to tell that a node of a type is ready: a TCP connect, or an HTTP GET."""

    port: int = Field(ge=1, le=65535, description="Port probed on the node's private IP.")
    path: str | None = Field(
        default=None,
        description="HTTP path to GET (a 2xx or 3xx answer passes); without it, a TCP "
        "connection to the port passes.",
    )
    interval_seconds: float = Field(
        default=10.0, gt=0, description="Time between probes of one node."
    )
    timeout_seconds: float = Field(
        default=2.0, gt=0, description="A probe that takes longer fails."
    )
    failure_threshold: int = Field(
        default=3,
        ge=1,
        description="Consecutive failed probes (after the grace period) that get a node "
        "terminated and replaced.",
    )
    grace_seconds: float = Field(
        default=120.0,
        ge=0,
        description="After EC2 shows the node running, failures do not count this long "
        "(boot time); a passing probe makes it ready at any time.",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or any(c.isspace() for c in value)):
            raise ValueError(f"{value!r}: an HTTP path starts with '/' and has no spaces")
        return value

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> HealthCheck:
        if self.timeout_seconds > self.interval_seconds:
            raise ValueError(
                f"timeout_seconds ({self.timeout_seconds:g}) must not exceed "
                f"interval_seconds ({self.interval_seconds:g})"
            )
        return self


class NodeType(_Strict):
    """One kind of worker: what EC2 launches and what it offers to demand."""

    node_config: dict[str, Any] = Field(
        description="RunInstances parameters (InstanceType and ImageId required; any other "
        "such as SubnetId, SecurityGroupIds, KeyName, IamInstanceProfile, TagSpecifications, "
        "UserData). MinCount, MaxCount and ClientToken are set by steadyscale."
    )
    resources: dict[str, float] = Field(
        description="What one node offers to demand, e.g. `{CPU: 4, GPU: 1}`."
    )
    min_workers: int = Field(
        default=0, ge=0, description="Nodes of this type kept even without demand."
    )
    max_workers: int = Field(default=10, ge=0, description="Nodes of this type at most.")
    priority: int = Field(
        default=0,
        description="Higher is preferred when several node types fit the same demand equally well.",
    )
    market: Literal["on-demand", "spot"] = Field(
        default="on-demand",
        description="Spot or on-demand; with spot_fallback_to_on_demand, on-demand is used "
        "while every spot pool of the type is out of capacity.",
    )
    spot_fallback_to_on_demand: bool = Field(
        default=False,
        description="With `market: spot`, launch on-demand while every spot pool of the "
        "type is out of capacity.",
    )
    health_check: HealthCheck | None = Field(
        default=None,
        description="Probe that makes a running node ready. Without one, a node is ready "
        "as soon as EC2 shows it running.",
    )

    @field_validator("node_config")
    @classmethod
    def _needs_instance_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("InstanceType"), str) or not value["InstanceType"]:
            raise ValueError("InstanceType is required (for example m5.large)")
        if not isinstance(value.get("ImageId"), str) or not value["ImageId"]:
            raise ValueError("ImageId is required (an AMI id such as ami-0abc...)")
        for reserved in ("MinCount", "MaxCount", "ClientToken"):
            if reserved in value:
                raise ValueError(f"{reserved} is set by steadyscale; remove it")
        if "InstanceMarketOptions" in value:
            raise ValueError(
                "set the node type's market (spot or on-demand) instead of InstanceMarketOptions"
            )
        return value

    @field_validator("resources")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        return amounts_or_error(value, "give at least one resource, for example {CPU: 2}")

    @model_validator(mode="after")
    def _min_le_max(self) -> NodeType:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})"
            )
        return self

    @property
    def instance_type(self) -> str:
        return str(self.node_config["InstanceType"])


class ScenarioStep(_Strict):
    """At ``at_seconds`` after start, the demand becomes ``demand``."""

    at_seconds: float = Field(ge=0, description="Seconds after the daemon starts.")
    demand: list[DemandItem] = Field(
        default_factory=list,
        description="The whole demand from then on (replaces the previous one).",
    )


class RateLimit(_Strict):
    capacity: float = Field(gt=0, description="Bucket size (burst).")
    refill_per_second: float = Field(gt=0, description="Tokens added per second.")


# The provider paces itself by EC2's own buckets instead of provoking RequestLimitExceeded:
# the calls it makes, and "instances:RunInstances" for the instances it launches.
_PACED = ("RunInstances", "TerminateInstances", "CreateTags", "DescribeInstances")
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    **{
        name: RateLimit(
            capacity=EC2_REQUEST_BUCKETS[name][0], refill_per_second=EC2_REQUEST_BUCKETS[name][1]
        )
        for name in _PACED
    },
    "instances:RunInstances": RateLimit(
        capacity=EC2_RESOURCE_BUCKETS["RunInstances"][0],
        refill_per_second=EC2_RESOURCE_BUCKETS["RunInstances"][1],
    ),
}


class Provider(_Strict):
    type: Literal["aws", "emulator", "memory"] = Field(
        description="aws: boto3 (real EC2 or endpoint_url); emulator: an embedded EC2 "
        "endpoint; memory: the emulator's model in-process, no HTTP (the simulator's backend)."
    )
    region: str = Field(default="us-east-1", description="AWS region.")
    subnets: list[str] = Field(
        default_factory=list, description="Subnets to launch into, in order of preference."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Any EC2-compatible endpoint (with type aws), e.g. a shared emulator.",
    )
    emulator: dict[str, Any] = Field(
        default_factory=dict,
        description="Knobs of the embedded emulator or memory model: profile, seed, "
        "time_scale, ...",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="botocore's standard retry mode: total attempts per call, for "
        "throttling and 5xx.",
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="botocore's connect timeout per call."
    )
    read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="botocore's read timeout per call."
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
        description="Client-side token buckets per EC2 action (EC2's defaults unless set here).",
    )
    rate_limit_max_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a call may wait for its bucket before it is skipped until "
        "the next tick.",
    )
    health_probes: Literal["direct", "endpoint"] | None = Field(
        default=None,
        description="Where node health probes go: 'direct' to each node's private IP, or "
        "'endpoint' to the EC2 endpoint's emulator control API (on 127.0.0.1; "
        "emulated instances' addresses are never contacted). Default: endpoint "
        "when endpoint_url is set (such as a shared steadyscale emulator), else "
        "direct with type aws; with emulator or memory, always the emulator or "
        "model. Set direct explicitly for an EC2-compatible endpoint whose "
        "nodes are real.",
    )

    @model_validator(mode="after")
    def _probes_need_an_endpoint(self) -> Provider:
        if self.health_probes == "endpoint" and self.type == "aws" and not self.endpoint_url:
            raise ValueError(
                "health_probes: endpoint needs endpoint_url (the emulator's "
                "address); use direct for real EC2"
            )
        if self.health_probes == "direct" and self.type != "aws":
            raise ValueError(
                f"health_probes: direct is not allowed with type {self.type}: "
                "emulated instances have made-up addresses that are never "
                "contacted; leave health_probes out"
            )
        return self

    @property
    def probes_via_endpoint(self) -> bool:
        # Emulated instances have made-up addresses: never probe them directly. An
        # endpoint_url is most often a shared emulator, so direct must be asked for.
        if self.health_probes is not None:
            return self.health_probes == "endpoint"
        return self.type != "aws" or self.endpoint_url is not None

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not subnet.startswith("subnet-"):
                raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class MetricsConfig(_Strict):
    """Where the Prometheus metrics and the ``/healthz`` endpoint are served."""

    host: str = Field(
        default="127.0.0.1",
        description="Address the metrics endpoint listens on. Keep it on loopback unless a "
        "firewall guards the machine: the metrics name your cluster's nodes.",
    )
    port: int | Literal["off"] = Field(
        default=0,
        description="Port of /metrics and /healthz: 0 picks a free port (printed at start), "
        "'off' serves nothing.",
    )
    stale_after_intervals: float = Field(
        default=3.0,
        ge=1,
        description="/healthz answers 503 when no tick completed for this many "
        "loop_interval_seconds (plus max_tick_seconds, the longest a tick may "
        "legitimately take).",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        # An empty host binds every interface: make that a deliberate 0.0.0.0 or ::.
        if not value.strip():
            raise ValueError(
                "give an address, e.g. 127.0.0.1 (an empty host would listen "
                "on every interface; write 0.0.0.0 if that is meant)"
            )
        return value.strip()

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        # Checked before pydantic's union so that the error names metrics.port plainly.
        # YAML reads an unquoted off as false: that is "off" too, never port 0.
        if value is False or value == "off":
            return "off"
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError(
                f"give a port between 0 and 65535 (0 picks a free one) or off, got {value!r}"
            )
        return value

    def stale_after_seconds(self, config: ClusterConfig) -> float:
        return self.stale_after_intervals * config.loop_interval_seconds + (config.max_tick_seconds)


class ClusterConfig(_Strict):
    cluster_name: str = Field(
        description="The cluster's name: tagged on every instance (`steadyscale:cluster`), "
        "so it scopes listings, termination and the IAM policy."
    )
    max_workers: int = Field(
        default=100, ge=0, description="Nodes at most, all node types together."
    )
    upscaling_speed: float = Field(
        default=1.0,
        gt=0,
        description="New nodes may be starting at once: max(5, upscaling_speed x max(1, "
        "running nodes)).",
    )
    idle_timeout_minutes: float = Field(
        default=5.0,
        ge=0,
        description="A node idle this long (above min_workers) is terminated.",
    )
    loop_interval_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between two ticks of the loop."
    )
    listing_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The full cluster listing (interruptions, strangers) runs at least this "
        "often; between listings only starting and terminating nodes are looked up.",
    )
    lookup_deadline_seconds: float = Field(
        default=5.0,
        gt=0,
        description='A single-instance lookup retries with backoff this long before "not '
        'visible yet".',
    )
    visibility_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="An instance EC2 has never shown this long after launch is LOST (and "
        "terminated by id).",
    )
    unavailable_offering_ttl_seconds: float = Field(
        default=180.0,
        ge=0,
        description="A (node type, subnet, market) pool that ran out of capacity is skipped "
        "this long.",
    )
    gc_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Cluster-tagged instances the ledger does not know are terminated this "
        "long after their launch (unless their request-id tag matches a launch we are "
        "waiting on).",
    )
    max_tick_seconds: float = Field(
        default=60.0,
        gt=0,
        description="No tick may take longer than this; slower calls are left for the next tick.",
    )
    ledger: str | None = Field(
        default=None,
        description="Path of the SQLite ledger; relative to the config file. Default: "
        "`.steadyscale/<cluster_name>.db` beside the config.",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus metrics and /healthz."
    )
    provider: Provider = Field(description="Where the instances run: see `provider` below.")
    available_node_types: dict[str, NodeType] = Field(
        description="Node types by name: see `available_node_types.<name>` below."
    )
    scenario: list[ScenarioStep] = Field(
        default_factory=list,
        description="Optional scripted demand (the quick start uses it); ends the run when done.",
    )
    prices: dict[str, float] = Field(
        default_factory=dict,
        description="Optional prices in dollars per instance-hour, by instance type "
        "(simulation reports).",
    )

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        for name, price in value.items():
            if price < 0:
                raise ValueError(f"{name}: a price per hour must be >= 0, got {price:g}")
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "use letters, digits, '-', '_' or '.', starting with a letter or digit "
                "(at most 63 characters)"
            )
        return value

    @field_validator("available_node_types")
    @classmethod
    def _node_types(cls, value: dict[str, NodeType]) -> dict[str, NodeType]:
        if not value:
            raise ValueError("define at least one node type")
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"node type name {name!r}: use letters, digits, '-', '_', '.'")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> ClusterConfig:
        total_min = sum(t.min_workers for t in self.available_node_types.values())
        if total_min > self.max_workers:
            raise ValueError(
                f"the node types' min_workers add up to {total_min}, more than "
                f"max_workers ({self.max_workers})"
            )
        if self.listing_interval_seconds >= self.visibility_timeout_seconds:
            raise ValueError(
                f"listing_interval_seconds ({self.listing_interval_seconds:g}) must be below "
                f"visibility_timeout_seconds ({self.visibility_timeout_seconds:g})"
            )
        times = [step.at_seconds for step in self.scenario]
        if times != sorted(times):
            raise ValueError("scenario steps must be in time order")
        for index, step in enumerate(self.scenario):
            for item in step.demand:
                if not any(
                    fits(item.bundle, t.resources) for t in self.available_node_types.values()
                ):
                    raise ValueError(
                        f"scenario[{index}]: no node type can fit bundle "
                        f"{format_bundle(item.bundle)}"
                    )
        return self

    @property
    def idle_timeout_seconds(self) -> float:
        return self.idle_timeout_minutes * 60.0
