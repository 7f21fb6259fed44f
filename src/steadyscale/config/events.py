"""The ``events`` block of the cluster config: the SQS queue EC2's events reach through
EventBridge, how it is polled, and how far the loop acts on what they say."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from steadyscale.config.base import StrictModel

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")


class EventsConfig(StrictModel):
    """Where EC2's events arrive (an SQS queue fed by EventBridge rules, see `steadyscale
    events setup`) and how the loop uses them. The queue is reached at the provider's
    endpoint and region."""

    queue_url: str | None = Field(
        default=None, description="The queue's URL (as SQS gives it). Give this or queue_name."
    )
    queue_name: str | None = Field(
        default=None,
        description="The queue's name, looked up at start (in the provider's region, at its "
        "endpoint). Give this or queue_url.",
    )
    wait_seconds: int = Field(
        default=20,
        ge=0,
        le=20,
        description="SQS long poll: how long one receive waits for a message (at most 20). "
        "The receive runs beside the loop, never inside a tick.",
    )
    max_messages: int = Field(
        default=10, ge=1, le=10, description="Messages taken per receive (SQS allows 1 to 10)."
    )
    max_events_per_tick: int = Field(
        default=1000,
        ge=1,
        description="At most this many received messages are handled in one tick; the rest "
        "wait for the next (keeps a tick bounded in a storm of events).",
    )
    full_listing_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="While events flow, the full cluster listing (the source of truth) runs "
        "this often instead of every listing_interval_seconds, and a node in motion is "
        "looked up only when nothing showed it for listing_interval_seconds (a lost event "
        "holds it back no longer than polling would). When the queue cannot be read, "
        "polling is back to listing_interval_seconds at once.",
    )
    max_rebalance_replacements: int = Field(
        default=1,
        ge=0,
        description="Per node type: at most this many nodes replaced at once ahead of time "
        "(a rebalance recommendation, a scheduled retirement or failing status checks): a "
        "replacement is launched, and the old node terminated once ready nodes hold its "
        "demand. 0 only logs such events.",
    )
    replace_impaired: bool = Field(
        default=True,
        description="Replace nodes whose EC2 status checks (DescribeInstanceStatus) say "
        "impaired, checked with every full listing.",
    )

    @field_validator("queue_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _QUEUE_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an SQS queue name (1 to 80 letters, digits, '-' or '_')"
            )
        return value

    @field_validator("queue_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+/.+", value):
            raise ValueError(
                f"{value!r} is not a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
            )
        return value

    @model_validator(mode="after")
    def _one_queue(self) -> EventsConfig:
        if (self.queue_url is None) == (self.queue_name is None):
            raise ValueError("give exactly one of queue_url and queue_name")
        return self
