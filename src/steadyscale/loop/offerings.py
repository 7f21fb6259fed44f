"""The offering book: where each node type can launch (pools of subnet and market, in
order of preference), the pools set aside for a while after a capacity error or a spot
interruption, and which pool each launch request went to. A fleet node type's pools are
(instance type, AZ or subnet, market), set aside from CreateFleet's per-override errors
and shared by every node type that names the type there (EC2's capacity is the pool's)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from steadyscale.config import ClusterConfig
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.providers.protocol import FleetOverride
from steadyscale.providers.wire import Market, market_of
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import LaunchRequest


@dataclass(frozen=True, slots=True)
class Pool:
    """Where one launch goes: a subnet (None: EC2's choice) and a market."""

    subnet: str | None
    market: Market


def request_pool(request: LaunchRequest) -> Pool:
    """The pool a launch request used, from the parameters it was sent with."""
    return Pool(request.subnet_id, market_of(json.loads(request.spec) if request.spec else None))


class OfferingBook:
    """Pools set aside until a time, by (node type, pool); where each request went."""

    def __init__(
        self,
        config: ClusterConfig,
        clock: Clock,
        reporter: Reporter,
        requests: Iterable[LaunchRequest] = (),
    ) -> None:
        self.config = config
        self.clock = clock
        self.reporter = reporter
        self._unavailable: dict[tuple[str, Pool], float] = {}
        # Fleet pools set aside: (instance type, AZ or subnet, market) -> until when.
        self._offerings: dict[tuple[str, str | None, str], float] = {}
        # Where each launch request went, to know which pool an interruption hit.
        self._request_pools: dict[str, Pool] = {r.request_id: request_pool(r) for r in requests}

    def expire(self, now: float) -> None:
        """Pools whose time is up are offered again."""
        self._unavailable = {key: until for key, until in self._unavailable.items() if until > now}
        self._offerings = {key: until for key, until in self._offerings.items() if until > now}

    def pools(self, node_type: str) -> list[Pool]:
        """Where a node type can launch, in order of preference: spot pools first, then
        on-demand if the type allows falling back; each market over the config's subnets
        (or EC2's choice when the node config names its own subnet or interfaces)."""
        spec = self.config.available_node_types[node_type]
        config = spec.node_config
        subnets: list[str | None] = (
            [None]
            if config.get("SubnetId") or config.get("NetworkInterfaces")
            else list(self.config.provider.subnets) or [None]
        )
        markets = [spec.market]
        if spec.market == "spot" and spec.spot_fallback_to_on_demand:
            markets.append("on-demand")
        return [Pool(subnet, market) for market in markets for subnet in subnets]

    def pool(self, node_type: str) -> Pool:
        """The first of the type's pools not set aside (the first of all if every one is)."""
        pools = self.pools(node_type)
        for pool in pools:
            if (node_type, pool) not in self._unavailable:
                return pool
        return pools[0]

    def unavailable_types(self) -> frozenset[str]:
        """Node types whose every pool is set aside: the scheduler falls back to others."""
        return frozenset(
            name
            for name, spec in self.config.available_node_types.items()
            if (
                not self.overrides(name)
                if spec.is_fleet
                else all((name, pool) in self._unavailable for pool in self.pools(name))
            )
        )

    def overrides(self, node_type: str) -> tuple[FleetOverride, ...]:
        """A fleet node type's pools not set aside: its types (in order of preference,
        which ``prioritized`` reads as the priority) times its subnets (the node config's
        own, else the config's, else EC2's choice)."""
        spec = self.config.available_node_types[node_type]
        own = spec.node_config.get("SubnetId")
        subnets: list[str | None] = (
            [str(own)] if own else list(self.config.provider.subnets) or [None]
        )
        return tuple(
            FleetOverride(instance_type=t, subnet_id=subnet, priority=float(rank))
            for rank, t in enumerate(spec.fleet_types())
            for subnet in subnets
            if (t, subnet, spec.market) not in self._offerings
        )

    def set_aside_offering(
        self, instance_type: str, place: str | None, market: str, why: str, report: TickReport
    ) -> None:
        """Skip the pool (type, AZ or subnet, market) for every fleet for the TTL."""
        key = (instance_type, place, market)
        ttl = self.config.unavailable_offering_ttl_seconds
        if key not in self._offerings:
            where = place or "EC2's choice of zone"
            self.reporter.emit(
                report,
                "unavailable",
                f"{instance_type} {market} in {where} set aside for {ttl:.0f}s: {why}",
            )
        self._offerings[key] = self.clock.now() + ttl

    def set_aside(self, node_type: str, pool: Pool, why: str, report: TickReport) -> None:
        """Skip ``pool`` for the node type for ``unavailable_offering_ttl_seconds`` from
        now (a type the config no longer has is left alone)."""
        if node_type not in self.config.available_node_types:
            return
        ttl = self.config.unavailable_offering_ttl_seconds
        key = (node_type, pool)
        if key not in self._unavailable:
            where = pool.subnet or "EC2's choice of subnet"
            self.reporter.emit(
                report,
                "unavailable",
                f"{node_type} {pool.market} in {where} set aside for {ttl:.0f}s: {why}",
            )
        self._unavailable[key] = self.clock.now() + ttl

    def remember(self, request_id: str, pool: Pool) -> None:
        self._request_pools[request_id] = pool

    def interrupted(self, node_type: str, request_id: str | None, report: TickReport) -> None:
        """A node was interrupted: a spot pool is set aside (on-demand is never reclaimed)."""
        pool = self._request_pools.get(request_id or "")
        if pool is not None and pool.market == "spot":
            self.set_aside(node_type, pool, "interrupted", report)
