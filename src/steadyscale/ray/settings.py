"""The Ray provider's settings: its ``provider`` section of Ray's cluster YAML (Ray's AWS
keys, accepted as they are, and steadyscale's own), and where its state file lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from steadyscale.config import EventsConfig, describe_validation_error
from steadyscale.errors import ConfigError


class RayProviderSettings(BaseModel):
    """The ``provider`` section. Ray's AWS keys are accepted as they are (extra keys pass);
    the ones below are read, with Ray's defaults where Ray has the key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    region: str = Field(min_length=1)
    cache_stopped_nodes: bool = True
    aws_credentials: dict[str, str] | None = None
    # steadyscale's own keys.
    endpoint_url: str | None = None
    state_path: str | None = None
    time_scale: float = Field(default=1.0, gt=0)
    lookup_deadline_seconds: float = Field(default=5.0, ge=0)
    visibility_timeout_seconds: float = Field(default=600.0, gt=0)
    launch_deadline_seconds: float = Field(default=60.0, gt=0)
    # How long a new state file that finds worker nodes another file launched holds its
    # launches: EC2 may still hide instances the lost file knew of ("up to a few minutes").
    lost_state_hold_seconds: float = Field(default=300.0, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    # EC2's events (the cluster config's ``events`` block): nodes under a spot interruption
    # warning are reported terminating, so Ray replaces them before EC2 takes them.
    events: EventsConfig | None = None


def parse_settings(provider_config: Mapping[str, Any]) -> RayProviderSettings:
    try:
        return RayProviderSettings.model_validate(dict(provider_config))
    except ValidationError as exc:
        message = describe_validation_error(exc)
        raise ConfigError(f"provider.{message}; see docs/ray.md for the keys") from None


def default_state_path(cluster_name: str, region: str) -> Path:
    return Path.home() / ".steadyscale" / "ray" / f"{cluster_name}-{region}.sqlite"
