"""Capacity as EC2 rations it: pools per (instance type, zone, market) with shortage
spells, and the account's instance and on-demand vCPU limits. It keeps what the active
instances occupy and says how many of a launch EC2 would start now.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.ec2model.launch import Launch, LaunchRefusedError
from steadyscale.ec2model.settings import Capacity


class CapacityBook:
    """What the region's active instances occupy, against its pools and limits."""

    def __init__(self, settings: Capacity, rng: random.Random, seed: str = "") -> None:
        self.settings = settings
        self._rng = rng
        self._seed = seed
        self._out_of_capacity: dict[tuple[str, str, str], bool] = {}
        self._pool_usage: Counter[tuple[str, str, str]] = Counter()
        self._on_demand_vcpus = 0
        self._active_count = 0
        self._shortage_until: dict[tuple[str, str, str], float] = {}

    def occupy(self, inst: TrackedInstance) -> None:
        self._pool_usage[inst.pool] += 1
        self._active_count += 1
        if inst.market == "on-demand":
            self._on_demand_vcpus += inst.vcpus

    def release(self, inst: TrackedInstance) -> None:
        self._pool_usage[inst.pool] -= 1
        self._active_count -= 1
        if inst.market == "on-demand":
            self._on_demand_vcpus -= inst.vcpus

    def is_out_of_capacity(self, pool: tuple[str, str, str]) -> bool:
        """Whether the pool has no capacity at all: drawn once per pool from the seed."""
        chance = self.settings.out_of_capacity_probability
        if not chance:
            return False
        if pool not in self._out_of_capacity:
            draw = random.Random(f"{self._seed}/pool/{'/'.join(pool)}").random()
            self._out_of_capacity[pool] = draw < chance
        return self._out_of_capacity[pool]

    def depth(self, pool: tuple[str, str, str], now: float) -> float:
        """Instances the pool could still give now (infinite when unlimited), without
        drawing anything: what capacity-optimized allocation ranks pools by."""
        if now < self._shortage_until.get(pool, float("-inf")):
            return 0.0
        limit = self._pool_limit(pool)
        return math.inf if limit is None else float(max(0, limit - self._pool_usage[pool]))

    def _pool_limit(self, pool: tuple[str, str, str]) -> int | None:
        if self.is_out_of_capacity(pool):
            return 0
        itype, zone, market = pool
        best: tuple[int, int] | None = None  # (specificity, size)
        for key, size in self.settings.pools.items():
            parts = key.split("/")
            want_market = parts[2] if len(parts) == 3 else "*"
            candidates = ((parts[0], itype), (parts[1], zone), (want_market, market))
            if all(pattern in ("*", value) for pattern, value in candidates):
                specificity = sum(pattern != "*" for pattern, _ in candidates)
                if best is None or specificity > best[0]:
                    best = (specificity, size)
        if best is not None:
            return best[1]
        return self.settings.default_pool_size

    def admit(
        self, launch: Launch, max_count: int, now: float, *, already: tuple[int, int] = (0, 0)
    ) -> int:
        """How many of MinCount..``max_count`` EC2 would launch now, or raise
        LaunchRefusedError (a shortage spell, a full pool, or an account limit).
        ``already`` is (instances, on-demand vCPUs) the same call has taken from other
        pools (a fleet), not occupied yet."""
        taken, taken_vcpus = already
        pool = launch.pool
        capacity = self.settings
        min_count = launch.min_count
        if now < self._shortage_until.get(pool, float("-inf")):
            raise _insufficient_capacity(launch)
        if capacity.shortage_probability and self._rng.random() < capacity.shortage_probability:
            self._shortage_until[pool] = now + capacity.shortage_duration.sample(self._rng)
            raise _insufficient_capacity(launch)
        allowed = max_count
        limit = self._pool_limit(pool)
        if limit is not None:
            allowed = min(allowed, limit - self._pool_usage[pool])
            if allowed < min_count:
                raise _insufficient_capacity(launch)
        if capacity.instance_limit is not None:
            allowed = min(allowed, capacity.instance_limit - self._active_count - taken)
            if allowed < min_count:
                raise LaunchRefusedError(
                    "InstanceLimitExceeded",
                    f"You have requested more instances ({min_count}) than your current "
                    f"instance limit of {capacity.instance_limit} allows.",
                )
        vcpus = launch.vcpus
        if capacity.vcpu_limit is not None and launch.market == "on-demand" and vcpus > 0:
            room = capacity.vcpu_limit - self._on_demand_vcpus - taken_vcpus
            allowed = min(allowed, room // vcpus)
            if allowed < min_count:
                raise LaunchRefusedError(
                    "VcpuLimitExceeded",
                    "You have requested more vCPU capacity than your current vCPU limit of "
                    f"{capacity.vcpu_limit} allows for the instance bucket that the specified "
                    "instance type belongs to.",
                )
        return allowed


def _insufficient_capacity(launch: Launch) -> LaunchRefusedError:
    return LaunchRefusedError(
        "InsufficientInstanceCapacity",
        f"We currently do not have sufficient {launch.instance_type} capacity in the "
        f"Availability Zone you requested ({launch.availability_zone}). Our system will be "
        "working on provisioning additional capacity. You can currently get capacity by not "
        "specifying an Availability Zone in your request or choosing a different Availability "
        "Zone.",
    )
