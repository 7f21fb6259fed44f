"""CreateFleet instant, launch templates and spot prices on the in-memory backend: the same
EC2 model the emulator serves, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.core.instances import TAG_CLUSTER, TAG_NODE_TYPE
from steadyscale.core.prices import on_demand_price
from steadyscale.emulator import Fault, build_settings
from steadyscale.errors import CloudUnavailable, LaunchRejected, Throttled
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import (
    ClientOptions,
    FleetOverride,
    FleetSpec,
    LaunchSpec,
    NotVisibleYet,
    TemplateVersion,
)
from steadyscale.retries.clock import FakeClock

QUIET = {
    "errors": {
        "server_error_probability": 0,
        "lost_response_probability": 0,
        "timeout_probability": 0,
    },
    "spot": {"interruption_rate_per_hour": 0},
}
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
TYPES = ("m5.large", "c5.large", "r5.large")
DATA = {"ImageId": "ami-12345678", "InstanceType": "m5.large"}


def _provider(max_attempts: int = 3, **overrides: Any) -> tuple[MemoryProvider, FakeClock]:
    clock = FakeClock(1_000.0)
    settings = build_settings(profile="realistic", overrides={**QUIET, **overrides})
    provider = MemoryProvider(
        cluster_name="c1",
        clock=clock,
        settings=settings,
        options=ClientOptions(max_attempts=max_attempts),
    )
    return provider, clock


def _template(provider: MemoryProvider, clock: FakeClock, name: str = "c1-cpu") -> TemplateVersion:
    made = provider.create_launch_template(name, DATA, client_token=f"tok-{name}")
    clock.advance(60)  # past the realistic profile's visibility delay
    return made


def _spec(
    template: TemplateVersion,
    count: int = 6,
    *,
    market: str = "spot",
    strategy: str = "price-capacity-optimized",
    types: tuple[str, ...] = TYPES,
    zones: tuple[str, ...] = ZONES,
    request: str = "r-1",
    priorities: dict[str, float] | None = None,
) -> FleetSpec:
    overrides = tuple(
        FleetOverride(t, availability_zone=z, priority=(priorities or {}).get(t))
        for t in types
        for z in zones
    )
    return FleetSpec(
        request_id=request,
        client_token=f"ss-{request}",
        node_type="cpu",
        count=count,
        launch_template=template,
        overrides=overrides,
        market=market,
        allocation_strategy=strategy,
    )


def _pools(sizes: dict[str, int]) -> dict[str, Any]:
    return {"capacity": {"pools": sizes}}


def test_a_fleet_spreads_over_types_and_zones_when_pools_are_small() -> None:
    sizes = {f"{t}/{z}/spot": 2 for t in TYPES for z in ZONES}
    provider, clock = _provider(**_pools(sizes))
    result = provider.launch_fleet(_spec(_template(provider, clock), count=12))
    assert len(result.instances) == 12
    assert result.fleet_id is not None and result.fleet_id.startswith("fleet-")
    pools = {(i.instance_type, i.availability_zone) for i in result.instances}
    assert len(pools) == 6  # six pools of two
    assert {i.lifecycle for i in result.instances} == {"spot"}
    assert all(
        i.tags[TAG_CLUSTER] == "c1" and i.tags[TAG_NODE_TYPE] == "cpu" for i in result.instances
    )
    truth = {t.instance_id: t for t in provider.truth()}
    for inst in result.instances:
        tracked = truth[inst.instance_id]
        assert tracked.fleet_id == result.fleet_id
        assert tracked.pool == (inst.instance_type, inst.availability_zone, "spot")
        assert tracked.hourly_price == provider.model.prices.spot(*tracked.pool[:2], clock.now())
        assert tracked.hourly_price < (on_demand_price(tracked.instance_type) or 0)


def test_partial_fulfilment_names_the_pools_that_fell_short() -> None:
    sizes = {"*/*/spot": 0, "m5.large/us-east-1a/spot": 3, "c5.large/us-east-1b/spot": 2}
    provider, clock = _provider(**_pools(sizes))
    result = provider.launch_fleet(_spec(_template(provider, clock), count=8))
    assert len(result.instances) == 5
    failed = {(e.instance_type, e.availability_zone) for e in result.errors}
    assert ("r5.large", "us-east-1c") in failed
    assert {e.code for e in result.errors} == {"InsufficientInstanceCapacity"}
    assert len(provider.truth()) == 5


def test_every_pool_out_of_capacity_launches_nothing_and_says_why_per_pool() -> None:
    provider, clock = _provider(**_pools({"*/*/spot": 0}))
    result = provider.launch_fleet(_spec(_template(provider, clock), count=4))
    assert result.instances == ()
    assert {(e.instance_type, e.availability_zone) for e in result.errors} == {
        (t, z) for t in TYPES for z in ZONES
    }
    assert all(e.code == "InsufficientInstanceCapacity" for e in result.errors)


def test_a_lost_answer_resent_with_the_same_token_returns_the_same_instances() -> None:
    provider, clock = _provider(max_attempts=1)
    spec = _spec(_template(provider, clock), count=5)
    provider.inject(Fault.LOST_RESPONSE, "CreateFleet")
    with pytest.raises(CloudUnavailable):
        provider.launch_fleet(spec)
    assert len(provider.truth()) == 5  # EC2 launched them; the answer was lost
    again = provider.launch_fleet(spec)
    assert {i.instance_id for i in again.instances} == {t.instance_id for t in provider.truth()}
    assert len(provider.truth()) == 5


def test_the_same_token_with_other_parameters_is_refused() -> None:
    provider, clock = _provider()
    template = _template(provider, clock)
    provider.launch_fleet(_spec(template, count=2))
    with pytest.raises(LaunchRejected) as refused:
        provider.launch_fleet(_spec(template, count=3))
    assert refused.value.code == "IdempotentParameterMismatch"
    assert len(provider.truth()) == 2


def test_a_launch_template_is_not_visible_at_first() -> None:
    visibility = {"median": 5, "p99": 10, "max": 20}
    provider, clock = _provider(market={"launch_template_visibility": visibility})
    made = provider.create_launch_template("c1-gpu", DATA, client_token="t-1")
    assert made.version == 1 and made.template_id.startswith("lt-")
    assert isinstance(provider.launch_template_versions("c1-gpu"), NotVisibleYet)
    early = provider.launch_fleet(_spec(made, count=2))
    assert early.instances == ()
    assert {e.code for e in early.errors} == {"InvalidLaunchTemplateId.NotFound"}
    # The create resent with its token is answered with the same template.
    assert provider.create_launch_template("c1-gpu", DATA, client_token="t-1") == made
    clock.advance(21)
    versions = provider.launch_template_versions("c1-gpu")
    assert versions == [made]
    assert len(provider.launch_fleet(_spec(made, count=2, request="r-2")).instances) == 2


def test_a_new_template_version_leaves_old_instances_with_theirs() -> None:
    provider, clock = _provider()
    first = _template(provider, clock)
    old = provider.launch_fleet(_spec(first, count=2))
    changed = {**DATA, "ImageId": "ami-87654321"}
    second = provider.create_launch_template_version("c1-cpu", changed, client_token="v2")
    assert second.version == 2 and second.template_id == first.template_id
    assert provider.create_launch_template_version("c1-cpu", changed, client_token="v2") == second
    clock.advance(60)
    versions = provider.launch_template_versions("c1-cpu")
    assert isinstance(versions, list) and [v.version for v in versions] == [1, 2]
    new = provider.launch_fleet(_spec(second, count=2, request="r-2"))
    truth = {t.instance_id: t for t in provider.truth()}
    assert {truth[i.instance_id].launch_template for i in old.instances} == {(first.template_id, 1)}
    assert {truth[i.instance_id].launch_template for i in new.instances} == {(first.template_id, 2)}
    assert {i.tags["aws:ec2launchtemplate:version"] for i in new.instances} == {"2"}


def test_spot_prices_move_over_time_under_the_on_demand_price() -> None:
    provider, clock = _provider(market={"spot_price_step_seconds": 60})
    before = provider.spot_prices(["m5.large", "c5.large"])
    assert {z for _, z in before} >= set(ZONES)
    assert all(0 < p < (on_demand_price(t) or 0) for (t, _), p in before.items())
    clock.advance(3600)
    after = provider.spot_prices(["m5.large", "c5.large"])
    assert after.keys() == before.keys()
    assert after != before
    twin, twin_clock = _provider(market={"spot_price_step_seconds": 60})
    twin_clock.advance(3600)
    assert twin.spot_prices(["m5.large", "c5.large"]) == after  # seeded


def _pools_of(result: Any) -> set[tuple[str, str]]:
    return {(i.instance_type, i.availability_zone) for i in result.instances}


def test_price_capacity_optimized_takes_the_cheapest_of_the_pools_deep_enough() -> None:
    provider, clock = _provider()
    template = _template(provider, clock)
    prices = {(t, z): provider.model.prices.spot(t, z, clock.now()) for t in TYPES for z in ZONES}
    cheapest = min(prices, key=lambda pool: prices[pool])
    assert _pools_of(provider.launch_fleet(_spec(template, count=4))) == {cheapest}
    # A cheap pool too shallow for the whole request is passed over for a deep one.
    shallow = {f"{cheapest[0]}/{cheapest[1]}/spot": 2}
    provider, clock = _provider(**_pools(shallow))
    result = provider.launch_fleet(_spec(_template(provider, clock), count=4))
    assert cheapest not in _pools_of(result) and len(_pools_of(result)) == 1


def test_lowest_price_fills_the_cheapest_pools_first() -> None:
    prices_of = _provider()[0].model.prices
    prices = {(t, z): prices_of.spot(t, z, 1_000.0) for t in TYPES for z in ZONES}
    ranked = sorted(prices, key=lambda pool: prices[pool])
    provider, clock = _provider(**_pools({f"{ranked[0][0]}/{ranked[0][1]}/spot": 2}))
    result = provider.launch_fleet(
        _spec(_template(provider, clock), count=4, strategy="lowest-price")
    )
    counts = {pool: 0 for pool in ranked}
    for inst in result.instances:
        counts[(inst.instance_type or "", inst.availability_zone or "")] += 1
    assert counts[ranked[0]] == 2 and counts[ranked[1]] == 2


def test_capacity_optimized_takes_the_deepest_pool() -> None:
    sizes = {"*/*/spot": 5, "r5.large/us-east-1b/spot": 50}
    provider, clock = _provider(**_pools(sizes))
    result = provider.launch_fleet(
        _spec(_template(provider, clock), count=4, strategy="capacity-optimized")
    )
    assert _pools_of(result) == {("r5.large", "us-east-1b")}


def test_on_demand_lowest_price_and_prioritized() -> None:
    provider, clock = _provider()
    template = _template(provider, clock)
    cheap = provider.launch_fleet(
        _spec(template, count=2, market="on-demand", strategy="lowest-price", zones=ZONES[:1])
    )
    assert _pools_of(cheap) == {("c5.large", "us-east-1a")}  # 0.085 < 0.096 < 0.126
    assert {i.lifecycle for i in cheap.instances} == {None}
    truth = {t.instance_id: t for t in provider.truth()}
    assert {truth[i.instance_id].hourly_price for i in cheap.instances} == {0.085}
    chosen = provider.launch_fleet(
        _spec(
            template,
            count=2,
            market="on-demand",
            strategy="prioritized",
            zones=ZONES[:1],
            request="r-2",
            priorities={"r5.large": 0, "m5.large": 1},
        )
    )
    assert _pools_of(chosen) == {("r5.large", "us-east-1a")}


def test_a_strategy_of_the_wrong_market_is_refused_whole() -> None:
    provider, clock = _provider()
    with pytest.raises(LaunchRejected) as refused:
        provider.launch_fleet(_spec(_template(provider, clock), market="on-demand"))
    assert refused.value.code == "InvalidParameterValue"
    assert "price-capacity-optimized" in refused.value.message


def test_create_fleet_has_a_request_bucket_of_its_own() -> None:
    provider, clock = _provider(max_attempts=1, throttling={"enabled": True})
    template = _template(provider, clock)
    for n in range(5):
        provider.launch_fleet(_spec(template, count=1, request=f"r-{n}"))
    with pytest.raises(Throttled):
        provider.launch_fleet(_spec(template, count=1, request="r-5"))
    launched = provider.launch(
        LaunchSpec("r-6", "ss-r-6", "cpu", 1, {"InstanceType": "m5.large", "ImageId": "ami-1"})
    )
    assert len(launched.instances) == 1  # RunInstances' bucket is untouched
    clock.advance(1)
    assert len(provider.launch_fleet(_spec(template, count=1, request="r-5")).instances) == 1
