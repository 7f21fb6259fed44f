"""The app's way to read a cluster config: the config itself, then the settings of the
emulated EC2 behind ``provider.type: emulator`` or ``memory`` (the ``provider.emulator``
block), so a bad knob is one line naming its key before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steadyscale.config import ClusterConfig, load_config, parse_config
from steadyscale.ec2model.settings import EmulatorSettings, build_settings
from steadyscale.errors import ConfigError

EMULATED = ("emulator", "memory")


def model_settings(
    config: ClusterConfig, *, source: str = "", overrides: dict[str, Any] | None = None
) -> EmulatorSettings:
    """The EC2 model's settings from ``provider.emulator`` (and ``overrides`` on top)."""
    try:
        return build_settings(overrides={**config.provider.emulator, **(overrides or {})})
    except ConfigError as exc:
        prefix = f"{source}: " if source else ""
        raise ConfigError(f"{prefix}provider.emulator.{exc}") from None


def checked(config: ClusterConfig, *, source: str = "") -> ClusterConfig:
    if config.provider.type in EMULATED:
        model_settings(config, source=source)
    return config


def parse_cluster_config(data: dict[str, Any], *, source: str = "") -> ClusterConfig:
    return checked(parse_config(data, source=source), source=source)


def load_cluster_config(path: str | Path) -> ClusterConfig:
    return checked(load_config(path), source=str(path))
