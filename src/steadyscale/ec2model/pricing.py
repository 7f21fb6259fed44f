"""What a pool costs: the on-demand price from the shared table (``core.prices``), and spot
prices per (instance type, AZ) that move over time, a seeded random walk under the
on-demand price, as DescribeSpotPriceHistory shows them.

A walk is a function of the seed, the pool and the step index only, so two backends on the
same seed, or the same run repeated, see the same prices at the same emulated times, in
whatever order they ask.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from steadyscale.core.prices import on_demand_price
from steadyscale.ec2model.catalogue import instance_vcpus
from steadyscale.ec2model.market_settings import Market

# The price per vCPU-hour of a type the table does not list (the m5 family's), so every
# instance of the model has a price in its ground truth.
_UNLISTED_PER_VCPU = 0.048
# Spot prices stay within these fractions of the on-demand price.
_FLOOR, _CEILING = 0.1, 0.95
# The walk keeps at most this many steps per pool; older ones are dropped from history
# (EC2 keeps 90 days).
_KEPT_STEPS = 10_000


def region_zones(region: str) -> tuple[str, ...]:
    """The Availability Zones the model knows in ``region`` (as moto names them)."""
    letters = "abcdef" if region == "us-east-1" else "abc"
    return tuple(f"{region}{letter}" for letter in letters)


@dataclass(frozen=True)
class SpotPrice:
    """One entry of the spot price history: the price of a pool from ``at`` on."""

    instance_type: str
    availability_zone: str
    price: float
    at: float


class PriceBook:
    """Prices of one region: on-demand by type, spot by (type, AZ) and time."""

    def __init__(self, settings: Market, seed: str, start: float) -> None:
        self.settings = settings
        self._seed = seed
        self.start = start
        self._walks: dict[tuple[str, str], list[float]] = {}

    def on_demand(self, instance_type: str) -> float:
        """USD per hour on demand: the table's, else a price proportional to the vCPUs."""
        listed = on_demand_price(instance_type)
        if listed is not None:
            return listed
        return round(_UNLISTED_PER_VCPU * instance_vcpus(instance_type), 5)

    def _step(self, at: float) -> int:
        return max(0, int((at - self.start) // self.settings.spot_price_step_seconds))

    def _walk(self, instance_type: str, zone: str, steps: int) -> list[float]:
        """The pool's prices for steps 0..``steps`` (drawn once, then kept)."""
        key = (instance_type, zone)
        walk = self._walks.get(key)
        on_demand = self.on_demand(instance_type)
        if walk is None:
            rng = random.Random(f"{self._seed}/spot/{instance_type}/{zone}/0")
            low, high = self.settings.spot_price_ratio
            walk = self._walks[key] = [on_demand * min(_CEILING, rng.uniform(low, high))]
        volatility = self.settings.spot_price_volatility
        while len(walk) <= min(steps, _KEPT_STEPS):
            rng = random.Random(f"{self._seed}/spot/{instance_type}/{zone}/{len(walk)}")
            moved = walk[-1] * math.exp(rng.gauss(0.0, volatility))
            walk.append(min(on_demand * _CEILING, max(on_demand * _FLOOR, moved)))
        return walk

    def spot(self, instance_type: str, zone: str, at: float) -> float:
        """The spot price of the pool at ``at``, USD per hour (rounded as EC2 shows it)."""
        step = min(self._step(at), _KEPT_STEPS)
        return round(self._walk(instance_type, zone, step)[step], 6)

    def price(self, instance_type: str, zone: str, market: str, at: float) -> float:
        """What an instance of the pool costs per hour if launched at ``at``."""
        if market == "spot":
            return self.spot(instance_type, zone, at)
        return self.on_demand(instance_type)

    def history(self, instance_type: str, zone: str, since: float, until: float) -> list[SpotPrice]:
        """The pool's price changes from ``since`` to ``until``, newest first, with the
        change in effect at ``since`` (EC2 includes it: the price as of the start)."""
        if until < self.start:
            return []
        step_seconds = self.settings.spot_price_step_seconds
        first, last = self._step(since), min(self._step(until), _KEPT_STEPS)
        walk = self._walk(instance_type, zone, last)
        return [
            SpotPrice(instance_type, zone, round(walk[step], 6), self.start + step * step_seconds)
            for step in range(last, min(first, last) - 1, -1)
        ]
