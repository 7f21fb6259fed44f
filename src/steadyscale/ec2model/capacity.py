"""Capacity as EC2 rations it: pools per (instance type, zone, market) with shortage
spells, and the account's instance and on-demand vCPU limits. It keeps what the active
instances occupy and says how many of a launch EC2 would start now.
"""

from __future__ import annotations

import random
from collections import Counter

from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.ec2model.launch import Launch, LaunchRefusedError
from steadyscale.ec2model.settings import Capacity


class CapacityBook:
    """What the region's active instances occupy, against its pools and limits."""

    def __init__(self, settings: Capacity, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
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

    def _pool_limit(self, pool: tuple[str, str, str]) -> int | None:
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

    def admit(self, launch: Launch, max_count: int, now: float) -> int:
        """How many of MinCount..``max_count`` EC2 would launch now, or raise
        LaunchRefusedError (a shortage spell, a full pool, or an account limit)."""
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
            allowed = min(allowed, capacity.instance_limit - self._active_count)
            if allowed < min_count:
                raise LaunchRefusedError(
                    "InstanceLimitExceeded",
                    f"You have requested more instances ({min_count}) than your current "
                    f"instance limit of {capacity.instance_limit} allows.",
                )
        vcpus = launch.vcpus
        if capacity.vcpu_limit is not None and launch.market == "on-demand" and vcpus > 0:
            allowed = min(allowed, (capacity.vcpu_limit - self._on_demand_vcpus) // vcpus)
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
