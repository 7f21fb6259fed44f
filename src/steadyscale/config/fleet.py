"""A node type launched as a fleet: several instance types named in order, or chosen by
requirements (vCPUs, memory, GPUs, architecture, families), the allocation strategy EC2
uses among their pools, and the launch template (steadyscale's own, or one the user names).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel

SPOT_STRATEGIES = ("price-capacity-optimized", "capacity-optimized", "lowest-price")
ON_DEMAND_STRATEGIES = ("lowest-price", "prioritized")
AllocationStrategy = Literal[
    "price-capacity-optimized", "capacity-optimized", "lowest-price", "prioritized"
]
# CreateFleet takes at most this many overrides (instance type x subnet).
MAX_OVERRIDES = 300


def template_data(node_config: Mapping[str, Any]) -> dict[str, Any]:
    """The LaunchTemplateData of a fleet node type's ``node_config`` (RunInstances'
    names): its subnet goes to the fleet's overrides instead, and UserData is sent
    base64-encoded (RunInstances' SDK encodes it, a launch template takes it encoded)."""
    data = {k: v for k, v in node_config.items() if k != "SubnetId"}
    if "RamdiskId" in data:
        data["RamDiskId"] = data.pop("RamdiskId")
    user_data = data.get("UserData")
    if isinstance(user_data, str):
        data["UserData"] = base64.b64encode(user_data.encode()).decode()
    return data


def content_hash(data: Mapping[str, Any]) -> str:
    """A short, stable hash of launch template data: a new version only when it changes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_strategy(market: str) -> str:
    """EC2's strategy when the node type names none: price-capacity-optimized for spot
    (what AWS recommends), lowest-price for on-demand (EC2's default)."""
    return "price-capacity-optimized" if market == "spot" else "lowest-price"


def check_strategy(market: str, strategy: str) -> None:
    allowed = SPOT_STRATEGIES if market == "spot" else ON_DEMAND_STRATEGIES
    if strategy not in allowed:
        raise ValueError(
            f"allocation_strategy {strategy!r} is not one of {market}'s: {', '.join(allowed)}"
        )


class Range(StrictModel):
    """An inclusive range; either end may be left open."""

    min: float | None = Field(default=None, ge=0, description="Lowest allowed (inclusive).")
    max: float | None = Field(default=None, ge=0, description="Highest allowed (inclusive).")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) must be <= max ({self.max:g})")
        return self

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class InstanceRequirements(StrictModel):
    """Which instance types a node type may launch, by what they offer; resolved offline
    against the instance-type data shipped with the project's EC2 libraries (printed by
    ``steadyscale validate``)."""

    vcpus: Range = Field(description="vCPUs per instance, e.g. `{min: 4, max: 8}`.")
    memory_mib: Range = Field(
        default_factory=Range, description="Memory per instance in MiB, e.g. `{min: 16384}`."
    )
    gpus: Range = Field(
        default_factory=lambda: Range(max=0),
        description="GPUs per instance; default none (`{max: 0}`).",
    )
    architecture: Literal["x86_64", "arm64"] = Field(
        default="x86_64", description="CPU architecture the image is built for."
    )
    include_families: tuple[str, ...] = Field(
        default=(),
        description="Only these families (the part before the dot, e.g. `m5`, `c6i`); "
        "empty: any family.",
    )
    exclude_families: tuple[str, ...] = Field(
        default=(), description="Never these families, e.g. `[t3, t3a]`."
    )
    max_types: int = Field(
        default=20,
        ge=1,
        le=60,
        description="At most this many types (the smallest matching ones are kept).",
    )


class LaunchTemplateRef(StrictModel):
    """A launch template the user manages; steadyscale launches it as it is."""

    name: str = Field(min_length=3, description="The launch template's name.")
    version: int | Literal["$Latest"] = Field(
        default="$Latest",
        description="A version number, or `$Latest` (the newest EC2 shows when the daemon starts).",
    )


class FleetFields(StrictModel):
    """The fleet keys of a node type (``NodeType`` inherits them)."""

    instance_types: tuple[str, ...] | None = Field(
        default=None,
        description="Instance types launched by one CreateFleet across types and subnets "
        "(in order of preference for `prioritized`); instead of `node_config.InstanceType`. "
        "Each must offer the node type's `resources`.",
    )
    instance_requirements: InstanceRequirements | None = Field(
        default=None,
        description="Instance types chosen by what they offer, instead of naming them.",
    )
    allocation_strategy: AllocationStrategy | None = Field(
        default=None,
        description="How EC2 chooses among a fleet's pools. Spot: `price-capacity-optimized` "
        "(default), `capacity-optimized`, `lowest-price`; on-demand: `lowest-price` "
        "(default), `prioritized` (the order of `instance_types`).",
    )
    launch_template: LaunchTemplateRef | None = Field(
        default=None,
        description="Launch a template you manage instead of the one steadyscale creates "
        "from `node_config` (fleet node types only).",
    )

    @field_validator("instance_types")
    @classmethod
    def _distinct(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("name at least one instance type, e.g. [m5.large, m6i.large]")
        repeated = sorted({t for t in value if value.count(t) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} named twice")
        return value

    @property
    def is_fleet(self) -> bool:
        """Launched by CreateFleet (several types) rather than RunInstances."""
        return self.instance_types is not None or self.instance_requirements is not None
