"""The EC2 model's fleet side on its own: allocation strategies, pools out of capacity from
the seed, account limits across the pools of one fleet, spot price walks, templates."""

from __future__ import annotations

import math

import pytest

from steadyscale.ec2model.allocation import Offer, check_strategy, choose, share
from steadyscale.ec2model.fleet import FleetAsk, FleetIds, plan_fleet
from steadyscale.ec2model.launch import LaunchRefusedError
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import build_settings
from steadyscale.errors import ConfigError

A = Offer(0, "m5.large", "us-east-1a", priority=2)
B = Offer(1, "c5.large", "us-east-1b", priority=1)
C = Offer(2, "r5.large", "us-east-1c")
PRICE = {A: 0.03, B: 0.02, C: 0.05}
DEPTH = {A: math.inf, B: 3.0, C: 40.0}


def _choose(strategy: str, remaining: int, offers: tuple[Offer, ...] = (A, B, C)) -> Offer:
    return choose(offers, strategy, remaining, PRICE.__getitem__, DEPTH.__getitem__)


def test_each_strategy_picks_its_pool() -> None:
    assert _choose("lowest-price", 10) == B
    assert _choose("prioritized", 10) == B  # priority 1 < 2 < none
    assert _choose("prioritized", 10, (A, C)) == A
    assert _choose("capacity-optimized", 10) == A  # unlimited is deepest
    assert _choose("capacity-optimized", 10, (B, C)) == C
    assert _choose("capacity-optimized-prioritized", 10, (B, C)) == C
    # price-capacity-optimized: the cheapest of the pools that can give what is wanted.
    assert _choose("price-capacity-optimized", 2) == B
    assert _choose("price-capacity-optimized", 10) == A
    assert _choose("price-capacity-optimized", 10, (B, C)) == C
    assert _choose("diversified", 10, (C, B)) == B
    assert share("diversified", 10, 3) == 4 and share("lowest-price", 10, 3) == 10


def test_a_strategy_is_checked_against_its_market() -> None:
    assert check_strategy("spot", "price-capacity-optimized") is None
    assert check_strategy("on-demand", "prioritized") is None
    assert "not one of" in (check_strategy("spot", "prioritized") or "")
    assert "must be" in (check_strategy("reserved", "lowest-price") or "")


def _model(**overrides: object) -> RegionModel:
    return RegionModel(build_settings(profile="none", overrides=overrides), "us-east-1")


def _ask(count: int, market: str = "spot", strategy: str = "lowest-price") -> FleetAsk:
    offers = tuple(
        Offer(n, t, z)
        for n, (t, z) in enumerate(
            (t, z)
            for t in ("m5.large", "c5.large", "r5.large")
            for z in ("us-east-1a", "us-east-1b")
        )
    )
    return FleetAsk(offers, count, market, strategy)


def test_pools_out_of_capacity_are_drawn_once_per_pool_from_the_seed() -> None:
    pools = [(t, z, "spot") for t in ("m5.large", "c5.large", "r5.large") for z in "abcdef"]
    out = [
        _model(capacity={"out_of_capacity_probability": 0.5}).capacity.is_out_of_capacity(p)
        for p in pools
    ]
    again = [
        _model(capacity={"out_of_capacity_probability": 0.5}).capacity.is_out_of_capacity(p)
        for p in pools
    ]
    assert out == again and 0 < sum(out) < len(pools)
    model = _model(capacity={"out_of_capacity_probability": 1.0})
    plan = plan_fleet(model, _ask(3), "fleet-1", 0.0)
    assert plan.placements == () and len(plan.errors) == 6


def test_account_limits_count_the_pools_a_fleet_already_took() -> None:
    model = _model(capacity={"instance_limit": 3, "pools": {"*/*": 2}})
    plan = plan_fleet(model, _ask(5), "fleet-1", 0.0)
    assert plan.count == 3
    assert "InstanceLimitExceeded" in {e.code for e in plan.errors}
    vcpus = _model(capacity={"vcpu_limit": 8, "pools": {"*/*": 2}})
    plan = plan_fleet(vcpus, _ask(5, "on-demand"), "fleet-1", 0.0)
    assert plan.count == 4  # 2 vCPUs each


def test_the_instance_launch_bucket_caps_a_fleet_and_throttles_it_when_empty() -> None:
    bucket = {"RunInstances": {"capacity": 4, "refill_per_second": 0.0}}
    model = _model(throttling={"enabled": True, "resource_buckets": bucket})
    assert plan_fleet(model, _ask(10), "fleet-1", 0.0).count == 4
    model.gate.consume_resources("RunInstances", 4, 0.0)
    with pytest.raises(LaunchRefusedError) as refused:
        plan_fleet(model, _ask(1), "fleet-2", 0.0)
    assert (refused.value.code, refused.value.status) == ("RequestLimitExceeded", 503)


def test_spot_prices_are_a_seeded_walk_whatever_the_order_they_are_asked_in() -> None:
    settings = {"market": {"spot_price_step_seconds": 10}}
    one, two = _model(**settings), _model(**settings)
    late = one.prices.spot("m5.large", "us-east-1a", 5_000.0)
    early = one.prices.spot("m5.large", "us-east-1a", 50.0)
    assert two.prices.spot("m5.large", "us-east-1a", 50.0) == early
    assert two.prices.spot("m5.large", "us-east-1a", 5_000.0) == late
    assert _model(seed=1, **settings).prices.spot("m5.large", "us-east-1a", 50.0) != early
    history = one.prices.history("m5.large", "us-east-1a", 25.0, 60.0)
    assert [h.at for h in history] == [60.0, 50.0, 40.0, 30.0, 20.0]  # as of the start too
    assert all(0.0096 <= h.price <= 0.0912 for h in history)
    assert one.prices.price("m5.large", "us-east-1a", "on-demand", 60.0) == 0.096


def test_fleet_ids_look_like_ec2s_and_are_seeded() -> None:
    ids = FleetIds("s")
    first = ids.new()
    assert first.startswith("fleet-") and len(first) == 42 and ids.new() != first
    assert FleetIds("s").new() == first


def test_a_template_version_is_found_only_once_shown() -> None:
    visibility = {"median": 5, "p99": 10, "max": 10}
    model = _model(market={"launch_template_visibility": visibility})
    templates = model.templates
    record = templates.create("t", {"ImageId": "ami-1"}, 0.0)
    with pytest.raises(LaunchRefusedError) as missing:
        templates.find(0.0, name="t")
    assert missing.value.code == "InvalidLaunchTemplateName.NotFoundException"
    with pytest.raises(LaunchRefusedError):
        templates.create("t", {}, 1.0)  # the name is taken, shown or not
    assert templates.find(11.0, name="t") is record
    templates.add_version(record, {"ImageId": "ami-2"}, 11.0)
    assert templates.version(record, "$Latest", 11.0).number == 1  # 2 not shown yet
    with pytest.raises(LaunchRefusedError) as version:
        templates.version(record, "2", 11.0)
    assert version.value.code == "InvalidLaunchTemplateId.VersionNotFound"
    assert templates.version(record, "$Latest", 22.0).number == 2
    assert templates.version(record, None, 22.0).number == 1  # the default stays


def test_the_market_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="spot_price_ratio"):
        build_settings(overrides={"market": {"spot_price_ratio": [0.8, 0.2]}})
    with pytest.raises(ConfigError, match="out_of_capacity_probability"):
        build_settings(overrides={"capacity": {"out_of_capacity_probability": 2}})
