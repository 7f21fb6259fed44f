"""The emulator's knobs: delays, faults, throttling, capacity, events, and profiles.

Settings come from a profile (``none``, ``realistic``, ``harsh``), then a YAML file, then
``key.path=value`` overrides; each layer changes only what it names. Every value is
validated, and an error names the key path so the CLI can print one clear line.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
)

from steadyscale.config.loading import describe_validation_error, read_yaml_file
from steadyscale.ec2model.distribution import Distribution
from steadyscale.ec2model.distribution import Strict as _Strict
from steadyscale.ec2model.event_settings import Events
from steadyscale.ec2model.market_settings import Market
from steadyscale.errors import ConfigError
from steadyscale.retries.tokenbucket import EC2_REQUEST_BUCKETS as EC2_REQUEST_DEFAULTS
from steadyscale.retries.tokenbucket import EC2_RESOURCE_BUCKETS as EC2_RESOURCE_DEFAULTS


class Operation(StrEnum):
    """The operations whose view of a fresh instance lags, each with its own delay."""

    DESCRIBE_BY_ID = "describe_by_id"  # DescribeInstances(InstanceIds=...) -> NotFound (F1)
    LISTING = "listing"  # DescribeInstances without ids omits it (F2)
    TAG_INDEX = "tag_index"  # tag filters do not match it yet (F3)
    CREATE_TAGS = "create_tags"  # CreateTags -> NotFound (F4)
    TERMINATE = "terminate"  # TerminateInstances and other state changes -> NotFound (F5)


class StaleReads(_Strict):
    """After a state change, reads within ``window`` may show the previous state."""

    probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that a read after a state change shows the old state.",
    )
    window: Distribution = Field(
        default=Distribution.zero(), description="How long after a change a read may be stale."
    )
    listing_flicker_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that a listing (DescribeInstances without ids) omits an instance "
        "it showed before: a listing that flickers.",
    )


class Bucket(_Strict):
    capacity: float = Field(gt=0, description="Bucket size (burst).")
    refill_per_second: float = Field(ge=0, description="Tokens added per second.")


# EC2's default buckets, as the emulator enforces them.
EC2_REQUEST_BUCKETS: dict[str, Bucket] = {
    name: Bucket(capacity=capacity, refill_per_second=refill)
    for name, (capacity, refill) in EC2_REQUEST_DEFAULTS.items()
}
EC2_RESOURCE_BUCKETS: dict[str, Bucket] = {
    name: Bucket(capacity=capacity, refill_per_second=refill)
    for name, (capacity, refill) in EC2_RESOURCE_DEFAULTS.items()
}


class Throttling(_Strict):
    """EC2's token buckets; ``scale`` multiplies every capacity and refill rate alike."""

    enabled: bool = Field(
        default=False, description="Answer RequestLimitExceeded when a bucket is empty."
    )
    scale: float = Field(
        default=1.0, gt=0, description="Multiplies every bucket's capacity and refill rate."
    )
    request_buckets: dict[str, Bucket] = Field(
        default_factory=lambda: dict(EC2_REQUEST_BUCKETS),
        description="Calls per action (or per class: mutating, non-mutating).",
    )
    resource_buckets: dict[str, Bucket] = Field(
        default_factory=lambda: dict(EC2_RESOURCE_BUCKETS),
        description="Instances launched or terminated.",
    )


class Capacity(_Strict):
    """Capacity per pool. A pool key is ``TYPE/AZ`` or ``TYPE/AZ/spot``; ``*`` matches any part."""

    default_pool_size: int | None = Field(
        default=None,
        ge=0,
        description="Instances per pool when `pools` does not name it; null: unlimited.",
    )
    pools: dict[str, int] = Field(
        default_factory=dict,
        description="Instances per pool, by `TYPE/AZ` or `TYPE/AZ/spot` (`*` matches).",
    )
    vcpu_limit: int | None = Field(
        default=None, ge=0, description="Account vCPU limit (VcpuLimitExceeded); null: none."
    )
    instance_limit: int | None = Field(
        default=None,
        ge=0,
        description="Account instance limit (InstanceLimitExceeded); null: none.",
    )
    shortage_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that a launch finds its pool in a shortage spell, which then "
        "lasts a while.",
    )
    shortage_duration: Distribution = Field(
        default=Distribution(median=120, p99=600, max=900),
        description="How long a shortage spell lasts.",
    )
    out_of_capacity_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that a (type, AZ, market) pool has no capacity at all, drawn "
        "once per pool from the seed.",
    )

    @field_validator("pools")
    @classmethod
    def _check_pools(cls, pools: dict[str, int]) -> dict[str, int]:
        for key, size in pools.items():
            parts = key.split("/")
            if len(parts) not in (2, 3) or not all(parts):
                raise ValueError(
                    f"pool key {key!r} must look like 'm5.large/us-east-1a' or "
                    "'m5.large/us-east-1a/spot'"
                )
            if len(parts) == 3 and parts[2] not in ("spot", "on-demand", "*"):
                raise ValueError(f"pool key {key!r}: market must be 'spot' or 'on-demand'")
            if size < 0:
                raise ValueError(f"pool {key!r} has negative size {size}")
        return pools


class Errors(_Strict):
    """Injected server faults, each a probability per API call."""

    server_error_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="500 InternalError / 503 Unavailable; nothing was done.",
    )
    lost_response_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The action was done, but the client gets a 500 InternalError.",
    )
    timeout_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The action was done, the server holds the answer ``timeout_seconds`` "
        "and then drops the connection: the client sees a timeout or a closed connection.",
    )
    timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a timed-out call is held before the connection drops.",
    )


class Spot(_Strict):
    """Spot interruptions: instances that go away without being asked."""

    interruption_rate_per_hour: float = Field(
        default=0.0, ge=0, description="Interruptions per spot instance per hour."
    )


class EmulatorSettings(_Strict):
    """Every knob of the emulator. All durations are in emulated seconds."""

    profile: str = Field(
        default="none",
        description="`none` (answers as moto does), `realistic` or `harsh`: the base the "
        "other keys override.",
    )
    seed: int = Field(
        default=0, description="Seed of every drawn delay and fault: a run is reproducible."
    )
    time_scale: float = Field(
        default=1.0,
        gt=0,
        description="Shrinks every delay alike: 0.1 runs ten times faster than real time "
        "(and so does the daemon's clock with the embedded emulator).",
    )
    visibility: Distribution = Field(
        default=Distribution.zero(),
        description="Delay after launch until EC2 shows an instance.",
    )
    visibility_by_operation: dict[Operation, Distribution] = Field(
        default_factory=dict,
        description="The visibility delay per operation, overriding `visibility`.",
    )
    boot: Distribution = Field(
        default=Distribution.zero(), description="Delay from pending to running."
    )
    shutdown: Distribution = Field(
        default=Distribution.zero(), description="Delay from shutting-down to terminated."
    )
    terminated_retention_seconds: float = Field(
        default=3600.0, ge=0, description="How long terminated instances stay listed."
    )
    stale_reads: StaleReads = Field(
        default=StaleReads(), description="Reads that show an older state."
    )
    throttling: Throttling = Field(
        default=Throttling(), description="EC2's request and resource token buckets."
    )
    capacity: Capacity = Field(
        default=Capacity(),
        description="Capacity per (instance type, AZ, market) pool and account limits.",
    )
    market: Market = Field(default=Market(), description="Spot prices and launch templates.")
    errors: Errors = Field(
        default=Errors(), description="Server errors, lost responses and timeouts."
    )
    spot: Spot = Field(default=Spot(), description="Spot interruptions.")
    events: Events = Field(
        default=Events(),
        description="What EC2 emits through EventBridge (warnings, rebalance, retirement, "
        "impaired checks) and how the bus delivers it.",
    )

    def visibility_for(self, operation: Operation) -> Distribution:
        return self.visibility_by_operation.get(operation, self.visibility)


PROFILES: tuple[str, ...] = ("none", "realistic", "harsh")


# What EventBridge's delivery does in the built-in profiles (at least once, no order).
_REALISTIC_EVENTS: dict[str, Any] = {
    "rebalance": {"probability": 0.5},
    "delivery": {
        "delay": {"median": 0.5, "p99": 5, "max": 20},
        "duplicate_probability": 0.01,
        "reorder_probability": 0.01,
        "loss_probability": 0.001,
    },
}
_HARSH_EVENTS: dict[str, Any] = {
    "rebalance": {"probability": 0.5},
    "delivery": {
        "delay": {"median": 2, "p99": 30, "max": 60},
        "duplicate_probability": 0.05,
        "reorder_probability": 0.05,
        "loss_probability": 0.01,
    },
}


def profile_values(name: str) -> dict[str, Any]:
    """The raw settings of a built-in profile."""
    if name == "none":
        # moto's behaviour: everything visible and running at once, no faults.
        return {"profile": "none"}
    if name == "realistic":
        return {
            "profile": "realistic",
            "visibility": {"median": 2, "p99": 30, "max": 120},
            "boot": {"median": 15, "p99": 45, "max": 120},
            "shutdown": {"median": 5, "p99": 20, "max": 60},
            "market": {"launch_template_visibility": {"median": 1, "p99": 5, "max": 15}},
            "stale_reads": {
                "probability": 0.1,
                "window": {"median": 2, "p99": 10, "max": 30},
                "listing_flicker_probability": 0.01,
            },
            "throttling": {"enabled": True},
            "errors": {
                "server_error_probability": 0.005,
                "lost_response_probability": 0.005,
                "timeout_probability": 0.002,
                "timeout_seconds": 5,
            },
            "spot": {"interruption_rate_per_hour": 0.05},
            "events": _REALISTIC_EVENTS,
        }
    if name == "harsh":
        return {
            "profile": "harsh",
            "visibility": {"median": 5, "p99": 60, "max": 180},
            "boot": {"median": 30, "p99": 90, "max": 240},
            "shutdown": {"median": 10, "p99": 45, "max": 120},
            "market": {"launch_template_visibility": {"median": 3, "p99": 15, "max": 45}},
            "stale_reads": {
                "probability": 0.3,
                "window": {"median": 5, "p99": 30, "max": 90},
                "listing_flicker_probability": 0.05,
            },
            "throttling": {"enabled": True, "scale": 0.5},
            "capacity": {"shortage_probability": 0.05},
            "errors": {
                "server_error_probability": 0.03,
                "lost_response_probability": 0.03,
                "timeout_probability": 0.01,
                "timeout_seconds": 5,
            },
            "spot": {"interruption_rate_per_hour": 0.5},
            "events": _HARSH_EVENTS,
        }
    raise ConfigError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_assignment(text: str) -> dict[str, Any]:
    """Turn ``errors.timeout_seconds=3`` into ``{"errors": {"timeout_seconds": 3}}``."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    path, raw = text.split("=", 1)
    keys = [k.strip() for k in path.split(".")]
    if not all(keys):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value: Any = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    for key in reversed(keys):
        value = {key: value}
    result: dict[str, Any] = value
    return result


def build_settings(
    *,
    profile: str | None = None,
    file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    assignments: list[str] | None = None,
) -> EmulatorSettings:
    """Layer profile, file, mapping overrides and ``key=value`` assignments, then validate.

    The profile comes from ``profile``, else the overrides' ``profile`` key, else the file's,
    else ``none``.
    """
    file_values = read_yaml_file(file) if file is not None else {}
    chosen = profile or (overrides or {}).get("profile") or file_values.get("profile") or "none"
    if not isinstance(chosen, str):
        raise ConfigError("profile: must be one of " + ", ".join(PROFILES))
    values = profile_values(chosen)
    values = _deep_merge(values, file_values)
    values["profile"] = chosen
    if overrides:
        values = _deep_merge(values, overrides)
    for assignment in assignments or []:
        values = _deep_merge(values, parse_assignment(assignment))
    try:
        return EmulatorSettings.model_validate(values)
    except ValidationError as exc:
        source = str(file) if file is not None else ""
        raise ConfigError(describe_validation_error(exc, source=source)) from None
