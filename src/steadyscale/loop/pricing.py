"""The price book: what a node costs per hour when it launches. On-demand from the table
in ``core.prices``; spot from the latest spot prices of its pool, fetched at most once per
refresh interval for the types being launched (one DescribeSpotPriceHistory call), so a
node's cost is recorded as its pool was priced when it started."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from steadyscale.core.instances import CloudInstance
from steadyscale.core.prices import on_demand_price
from steadyscale.errors import CloudError
from steadyscale.providers.protocol import CloudProvider
from steadyscale.retries.clock import Clock

log = logging.getLogger(__name__)

# Spot prices move every few minutes at most; fetched again after this long.
SPOT_REFRESH_SECONDS = 300.0


class PriceBook:
    """Hourly prices by pool: the on-demand table, and spot prices as last fetched."""

    def __init__(
        self, provider: CloudProvider, clock: Clock, refresh: float = SPOT_REFRESH_SECONDS
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.refresh = refresh
        self._spot: dict[tuple[str, str], float] = {}
        self._fetched: dict[str, float] = {}  # instance type -> when its prices were fetched

    def want_spot(self, instance_types: Iterable[str]) -> None:
        """Fetch the spot prices of the types not fetched within the refresh interval (one
        call for all of them); a failed fetch leaves the prices as they were."""
        now = self.clock.now()
        stale = sorted(
            {t for t in instance_types if now - self._fetched.get(t, -self.refresh) >= self.refresh}
        )
        if not stale:
            return
        for instance_type in stale:
            self._fetched[instance_type] = now
        try:
            prices = self.provider.spot_prices(stale)
        except (CloudError, NotImplementedError) as exc:
            log.info("spot prices of %s not known: %s", ", ".join(stale), exc)
            return
        self._spot.update(prices)

    def spot(self, instance_type: str, zone: str | None) -> float | None:
        if zone is not None and (instance_type, zone) in self._spot:
            return self._spot[(instance_type, zone)]
        zones = [p for (t, _), p in self._spot.items() if t == instance_type]
        return min(zones) if zones and zone is None else None

    def of(self, instance: CloudInstance, market: str | None = None) -> float | None:
        """What ``instance`` costs per hour: its spot pool's price when it is spot (by its
        lifecycle, else the market it was asked in), else the on-demand table's."""
        if instance.instance_type is None:
            return None
        spot = instance.lifecycle == "spot" or (instance.lifecycle is None and market == "spot")
        if spot:
            self.want_spot([instance.instance_type])
            return self.spot(instance.instance_type, instance.availability_zone)
        return on_demand_price(instance.instance_type)

    def pools(self) -> dict[tuple[str, str], float]:
        """The spot prices known, by (type, AZ)."""
        return dict(self._spot)
