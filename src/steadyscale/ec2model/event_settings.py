"""The knobs of what EC2 tells a listener through EventBridge: how long a spot interruption
is warned ahead, how often a rebalance recommendation comes before it, scheduled
retirements (AWS Health), impaired status checks, and the faults of the delivery itself
(delay, duplicates, reordering, loss). All durations are in emulated seconds.
"""

from __future__ import annotations

from pydantic import Field

from steadyscale.ec2model.distribution import Distribution, Strict


class Rebalance(Strict):
    """EC2 Instance Rebalance Recommendations: a spot instance at elevated risk."""

    probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that a spot interruption is preceded by a rebalance recommendation.",
    )
    lead: Distribution = Field(
        default=Distribution(median=300, p99=1200, max=1800),
        description="How long before the interruption warning the recommendation comes.",
    )


class Retirement(Strict):
    """Scheduled instance retirements, announced by AWS Health ahead of the deadline, when
    EC2 terminates the instance."""

    rate_per_hour: float = Field(
        default=0.0, ge=0, description="Retirements scheduled per instance per hour."
    )
    lead: Distribution = Field(
        default=Distribution(median=3600, p99=86400, max=172800),
        description="How long before the deadline AWS Health announces it.",
    )


class Impairment(Strict):
    """Instances whose status checks fail (DescribeInstanceStatus shows them impaired)."""

    rate_per_hour: float = Field(
        default=0.0, ge=0, description="Instances impaired per running instance per hour."
    )


class Delivery(Strict):
    """How the bus delivers each event: EventBridge is at least once, in no set order."""

    delay: Distribution = Field(
        default=Distribution.zero(), description="From the event until it reaches a target."
    )
    duplicate_probability: float = Field(
        default=0.0, ge=0, le=1, description="Chance that an event is delivered twice."
    )
    reorder_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Chance that an event is held back `reorder_delay` more, behind later ones.",
    )
    reorder_delay: Distribution = Field(
        default=Distribution(median=5, p99=30, max=60),
        description="How long a reordered event is held back.",
    )
    loss_probability: float = Field(
        default=0.0, ge=0, le=1, description="Chance that an event is never delivered."
    )


class Events(Strict):
    """What EC2 and AWS Health emit, and how the bus delivers it."""

    warning_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long a spot interruption warning comes before the interruption "
        "(EC2's two minutes; an instance younger than that is warned at launch).",
    )
    rebalance: Rebalance = Field(
        default=Rebalance(), description="Rebalance recommendations before interruptions."
    )
    retirement: Retirement = Field(
        default=Retirement(), description="Scheduled retirements (AWS Health)."
    )
    impairment: Impairment = Field(default=Impairment(), description="Failed status checks.")
    delivery: Delivery = Field(default=Delivery(), description="Delivery faults.")
