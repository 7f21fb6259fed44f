"""The ``provider`` block of the cluster config: where instances run (boto3, the embedded
emulator or the in-memory model), botocore's retries and timeouts, and the client-side
token buckets that pace calls by EC2's own limits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel
from steadyscale.retries.tokenbucket import EC2_REQUEST_BUCKETS, EC2_RESOURCE_BUCKETS


class RateLimit(StrictModel):
    capacity: float = Field(gt=0, description="Bucket size (burst).")
    refill_per_second: float = Field(gt=0, description="Tokens added per second.")


def bucket_pairs(limits: Mapping[str, RateLimit]) -> dict[str, tuple[float, float]]:
    """Rate limits as the providers' pacing takes them: (capacity, refill per second)."""
    return {name: (limit.capacity, limit.refill_per_second) for name, limit in limits.items()}


# The provider paces itself by EC2's own buckets instead of provoking RequestLimitExceeded:
# the calls it makes, and "instances:RunInstances" for the instances it launches.
_PACED = ("RunInstances", "CreateFleet", "TerminateInstances", "CreateTags", "DescribeInstances")
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


class Provider(StrictModel):
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
