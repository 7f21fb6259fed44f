"""Where the in-memory backend places a launch: the zone of its placement or subnet."""

from __future__ import annotations

from steadyscale.providers.protocol import LaunchSpec


class Zones:
    """The zone a launch lands in: its placement's, else its subnet's (each subnet the
    backend first meets gets the region's next zone), else the region's first."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._of_subnet: dict[str, str] = {}

    def zone_of(self, spec: LaunchSpec) -> str:
        config = spec.node_config
        placement = config.get("Placement")
        if isinstance(placement, dict) and placement.get("AvailabilityZone"):
            return str(placement["AvailabilityZone"])
        return self.of_subnet(spec.subnet_id or config.get("SubnetId"))

    def of_subnet(self, subnet: str | None) -> str:
        """The zone of ``subnet`` (the region's first without one)."""
        if not subnet:
            return f"{self.region}a"
        if subnet not in self._of_subnet:
            self._of_subnet[subnet] = f"{self.region}{'abcdef'[len(self._of_subnet) % 6]}"
        return self._of_subnet[subnet]
