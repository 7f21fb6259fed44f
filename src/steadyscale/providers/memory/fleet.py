"""The in-memory backend's fleet calls: CreateFleet instant, launch templates and spot
prices, answered by the region model as the emulator answers them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steadyscale.providers.protocol import FleetResult, FleetSpec, NotVisibleYet, TemplateVersion


class FleetCalls:
    """Fleet calls of ``MemoryProvider`` (a mixin: it shares the provider's model)."""

    def launch_fleet(self, spec: FleetSpec) -> FleetResult:
        raise NotImplementedError("CreateFleet is not implemented on the memory backend yet")

    def launch_template_versions(self, name: str) -> list[TemplateVersion] | NotVisibleYet:
        raise NotImplementedError("launch templates are not implemented on memory yet")

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        raise NotImplementedError("launch templates are not implemented on memory yet")

    def create_launch_template_version(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        raise NotImplementedError("launch templates are not implemented on memory yet")

    def spot_prices(self, instance_types: Sequence[str]) -> dict[tuple[str, str], float]:
        raise NotImplementedError("spot prices are not implemented on memory yet")
