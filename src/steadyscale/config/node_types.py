"""A node type of the cluster config: what EC2 launches (RunInstances parameters, market),
what one node offers to demand, its bounds, and the health check that makes it ready."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel
from steadyscale.config.drain import Drain, ScaleDownMode
from steadyscale.config.fleet import FleetFields, check_strategy, default_strategy
from steadyscale.config.instance_data import resolve_requirements
from steadyscale.core.resources import amounts_or_error


class HealthCheck(StrictModel):
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


class NodeType(FleetFields):
    """One kind of worker: what EC2 launches and what it offers to demand."""

    node_config: dict[str, Any] = Field(
        default_factory=dict,
        description="RunInstances parameters (InstanceType and ImageId required; any other "
        "such as SubnetId, SecurityGroupIds, KeyName, IamInstanceProfile, TagSpecifications, "
        "UserData). MinCount, MaxCount and ClientToken are set by steadyscale. For a fleet "
        "node type (`instance_types` or `instance_requirements`), no InstanceType: these "
        "parameters become its launch template's data.",
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
    scale_down: ScaleDownMode = Field(
        default="packed",
        description="How idle nodes are chosen for scale-down. `packed`: the nodes the "
        "scheduler's packing of the demand leaves empty. `reported`: the nodes the workload "
        "reports idle (usage reports), the one idle longest first; packing only for nodes "
        "nobody reports on. Either way a node reported busy is never chosen.",
    )
    drain: Drain | None = Field(
        default=None,
        description="Drain nodes of this type before terminating them (a hook, then the "
        "workload's ack or a timeout). Without it, a node is terminated at once unless its "
        "workload reports usage for it.",
    )

    @field_validator("node_config")
    @classmethod
    def _reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
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

    @model_validator(mode="after")
    def _what_to_launch(self) -> NodeType:
        config = self.node_config
        named = config.get("InstanceType")
        if self.is_fleet:
            if self.instance_types is not None and self.instance_requirements is not None:
                raise ValueError("give instance_types or instance_requirements, not both")
            if named is not None:
                raise ValueError(
                    "node_config.InstanceType and instance_types/instance_requirements "
                    "exclude each other; list every type in instance_types"
                )
            if self.spot_fallback_to_on_demand:
                raise ValueError(
                    "spot_fallback_to_on_demand is for single-type node types; a fleet "
                    "already spreads over its types' pools"
                )
            check_strategy(self.market, self.allocation_strategy or default_strategy(self.market))
        else:
            if not isinstance(named, str) or not named:
                raise ValueError(
                    "node_config.InstanceType is required (for example m5.large), or name "
                    "several in instance_types"
                )
            for key in ("allocation_strategy", "launch_template"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} is for fleet node types (give instance_types)")
        if self.launch_template is None and (
            not isinstance(config.get("ImageId"), str) or not config["ImageId"]
        ):
            raise ValueError("node_config.ImageId is required (an AMI id such as ami-0abc...)")
        return self

    @property
    def instance_type(self) -> str:
        """The instance type, or a fleet's first (most preferred) one."""
        if self.is_fleet:
            types = self.fleet_types()
            return types[0] if types else "-"
        return str(self.node_config["InstanceType"])

    def fleet_types(self) -> tuple[str, ...]:
        """A fleet's instance types in order of preference (resolved from its requirements
        when it names none)."""
        if self.instance_types is not None:
            return self.instance_types
        if self.instance_requirements is not None:
            return resolve_requirements(self.instance_requirements)
        return (str(self.node_config["InstanceType"]),)

    @property
    def strategy(self) -> str:
        return self.allocation_strategy or default_strategy(self.market)
