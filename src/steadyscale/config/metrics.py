"""The ``metrics`` block of the cluster config: where Prometheus metrics and ``/healthz`` are
served, and when ``/healthz`` calls the loop stale."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from steadyscale.config.base import StrictModel

if TYPE_CHECKING:
    from steadyscale.config.models import ClusterConfig


class MetricsConfig(StrictModel):
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
