"""CreateFleet instant, launch templates and spot prices on the emulator, through boto3:
the model's pools, prices, allocation strategies and consistency behind EC2's wire shapes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from steadyscale.core.prices import on_demand_price
from steadyscale.emulator import Fault
from steadyscale.emulator.pytest_plugin import EmulatorFactory
from steadyscale.emulator.server import Emulator
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
DATA = {"ImageId": "ami-12c6146b", "InstanceType": "m5.large"}
CLUSTER_TAG = {"Key": "steadyscale:cluster", "Value": "c1"}


def _emulator(factory: EmulatorFactory, **overrides: Any) -> tuple[Emulator, FakeClock, Any]:
    clock = FakeClock(1_700_000_000.0)
    emulator = factory("realistic", clock=clock, **{**QUIET, **overrides})
    return emulator, clock, emulator.client()


def _template(ec2: Any, clock: FakeClock, name: str = "c1-cpu") -> str:
    made = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData=DATA, ClientToken=f"tok-{name}"
    )
    clock.advance(60)  # past the realistic profile's visibility delay
    return str(made["LaunchTemplate"]["LaunchTemplateId"])


def _fleet(
    ec2: Any,
    template_id: str,
    count: int,
    *,
    token: str = "fleet-1",
    market: str = "spot",
    strategy: str = "price-capacity-optimized",
    version: str = "1",
    types: tuple[str, ...] = TYPES,
    zones: tuple[str, ...] = ZONES,
    priorities: dict[str, float] | None = None,
) -> Any:
    overrides: list[dict[str, Any]] = []
    for instance_type in types:
        for zone in zones:
            override: dict[str, Any] = {"InstanceType": instance_type, "AvailabilityZone": zone}
            if priorities and instance_type in priorities:
                override["Priority"] = priorities[instance_type]
            overrides.append(override)
    options = "SpotOptions" if market == "spot" else "OnDemandOptions"
    return ec2.create_fleet(
        ClientToken=token,
        Type="instant",
        TargetCapacitySpecification={
            "TotalTargetCapacity": count,
            "DefaultTargetCapacityType": market,
        },
        **{options: {"AllocationStrategy": strategy}},
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": template_id,
                    "Version": version,
                },
                "Overrides": overrides,
            }
        ],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [CLUSTER_TAG]}],
    )


def _ids(answer: Any) -> list[str]:
    return [i for group in answer.get("Instances", []) for i in group["InstanceIds"]]


def _pools(answer: Any) -> set[tuple[str, str]]:
    return {
        (g["InstanceType"], g["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"])
        for g in answer.get("Instances", [])
    }


def test_a_fleet_spreads_over_types_and_zones_with_the_pool_and_price_in_ground_truth(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    sizes = {f"{t}/{z}/spot": 2 for t in TYPES for z in ZONES}
    emulator, clock, ec2 = _emulator(ec2_emulator_factory, capacity={"pools": sizes})
    answer = _fleet(ec2, _template(ec2, clock), 12)
    ids = _ids(answer)
    assert len(ids) == 12 and len(_pools(answer)) == 6
    assert answer["FleetId"].startswith("fleet-")
    assert {g["Lifecycle"] for g in answer["Instances"]} == {"spot"}
    truth = {t.instance_id: t for t in emulator.truth()}
    assert set(truth) == set(ids)
    for tracked in truth.values():
        assert tracked.fleet_id == answer["FleetId"] and tracked.market == "spot"
        assert 0 < (tracked.hourly_price or 0) < (on_demand_price(tracked.instance_type) or 0)
    # Fresh instances are not listed at once, and carry their tags when they are.
    clock.advance(600)
    found = ec2.describe_instances(InstanceIds=ids[:1])["Reservations"][0]["Instances"][0]
    assert found["InstanceLifecycle"] == "spot"
    assert found["Placement"]["AvailabilityZone"] == truth[ids[0]].availability_zone
    tags = {t["Key"]: t["Value"] for t in found["Tags"]}
    assert tags["steadyscale:cluster"] == "c1" and tags["aws:ec2launchtemplate:version"] == "1"


def test_fresh_fleet_instances_are_invisible_for_a_while(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    visibility = {"median": 30, "p99": 60, "max": 90}
    emulator, clock, ec2 = _emulator(ec2_emulator_factory, visibility=visibility)
    ids = _ids(_fleet(ec2, _template(ec2, clock), 3))
    listed = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids}])
    assert listed["Reservations"] == []
    clock.advance(91)
    listed = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids}])
    assert sum(len(r["Instances"]) for r in listed["Reservations"]) == 3


def test_partial_fulfilment_and_every_pool_out_of_capacity(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    sizes = {"*/*/spot": 0, "m5.large/us-east-1a/spot": 3}
    emulator, clock, ec2 = _emulator(ec2_emulator_factory, capacity={"pools": sizes})
    template_id = _template(ec2, clock)
    partial = _fleet(ec2, template_id, 5)
    assert len(_ids(partial)) == 3 and _pools(partial) == {("m5.large", "us-east-1a")}
    errors = {
        (e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"], e["ErrorCode"])
        for e in partial["Errors"]
    }
    assert ("r5.large", "InsufficientInstanceCapacity") in errors
    none = _fleet(ec2, template_id, 2, token="fleet-2")
    assert _ids(none) == []
    failed = {
        (
            e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"],
            e["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"],
        )
        for e in none["Errors"]
    }
    assert failed == {(t, z) for t in TYPES for z in ZONES}
    assert len(emulator.truth()) == 3


def test_a_lost_answer_resent_with_the_same_token_launches_nothing_more(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    emulator, clock, ec2 = _emulator(ec2_emulator_factory)
    template_id = _template(ec2, clock)
    emulator.inject(Fault.LOST_RESPONSE, "CreateFleet")
    with pytest.raises(ClientError) as lost:
        _fleet(ec2, template_id, 4)
    assert lost.value.response["Error"]["Code"] == "InternalError"
    assert len(emulator.truth()) == 4
    again = _fleet(ec2, template_id, 4)
    assert set(_ids(again)) == {t.instance_id for t in emulator.truth()}
    assert len(emulator.truth()) == 4
    with pytest.raises(ClientError) as mismatch:
        _fleet(ec2, template_id, 5)
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatch"
    assert [c.instances for c in emulator.calls.records() if c.action == "CreateFleet"] == [4, 0, 0]


def test_only_instant_fleets_are_served(ec2_emulator_factory: EmulatorFactory) -> None:
    _, clock, ec2 = _emulator(ec2_emulator_factory)
    template_id = _template(ec2, clock)
    with pytest.raises(ClientError) as refused:
        ec2.create_fleet(
            Type="maintain",
            TargetCapacitySpecification={"TotalTargetCapacity": 1},
            LaunchTemplateConfigs=[
                {"LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": "1"}}
            ],
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Type=instant only" in refused.value.response["Error"]["Message"]


def test_a_launch_template_is_not_visible_at_first_and_its_create_is_idempotent(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    visibility = {"median": 5, "p99": 10, "max": 20}
    emulator, clock, ec2 = _emulator(
        ec2_emulator_factory, market={"launch_template_visibility": visibility}
    )
    made = ec2.create_launch_template(
        LaunchTemplateName="c1-gpu", LaunchTemplateData=DATA, ClientToken="t-1"
    )["LaunchTemplate"]
    again = ec2.create_launch_template(
        LaunchTemplateName="c1-gpu", LaunchTemplateData=DATA, ClientToken="t-1"
    )["LaunchTemplate"]
    assert again["LaunchTemplateId"] == made["LaunchTemplateId"]
    with pytest.raises(ClientError) as missing:
        ec2.describe_launch_templates(LaunchTemplateNames=["c1-gpu"])
    assert missing.value.response["Error"]["Code"] == "InvalidLaunchTemplateName.NotFoundException"
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    early = _fleet(ec2, made["LaunchTemplateId"], 2)
    assert _ids(early) == []
    assert {e["ErrorCode"] for e in early["Errors"]} == {"InvalidLaunchTemplateId.NotFound"}
    clock.advance(21)
    shown = ec2.describe_launch_templates(LaunchTemplateNames=["c1-gpu"])["LaunchTemplates"]
    assert [t["LaunchTemplateId"] for t in shown] == [made["LaunchTemplateId"]]
    assert len(_ids(_fleet(ec2, made["LaunchTemplateId"], 2, token="fleet-2"))) == 2
    assert len(emulator.truth()) == 2


def test_a_new_template_version_leaves_old_instances_with_theirs(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    emulator, clock, ec2 = _emulator(ec2_emulator_factory)
    template_id = _template(ec2, clock)
    old = _ids(_fleet(ec2, template_id, 2))
    changed = {**DATA, "ImageId": "ami-1e749f67"}
    version = ec2.create_launch_template_version(
        LaunchTemplateName="c1-cpu", LaunchTemplateData=changed, ClientToken="v2"
    )["LaunchTemplateVersion"]
    assert version["VersionNumber"] == 2
    resent = ec2.create_launch_template_version(
        LaunchTemplateName="c1-cpu", LaunchTemplateData=changed, ClientToken="v2"
    )["LaunchTemplateVersion"]
    assert resent["VersionNumber"] == 2
    with pytest.raises(ClientError):  # version 2 is not shown yet
        ec2.describe_launch_template_versions(LaunchTemplateName="c1-cpu", Versions=["2"])
    clock.advance(60)
    listed = ec2.describe_launch_template_versions(LaunchTemplateName="c1-cpu")
    assert sorted(v["VersionNumber"] for v in listed["LaunchTemplateVersions"]) == [1, 2]
    new = _ids(_fleet(ec2, template_id, 2, token="fleet-2", version="$Latest"))
    truth = {t.instance_id: t for t in emulator.truth()}
    assert {truth[i].launch_template for i in old} == {(template_id, 1)}
    assert {truth[i].launch_template for i in new} == {(template_id, 2)}
    clock.advance(600)
    images = {
        i["InstanceId"]: i["ImageId"]
        for r in ec2.describe_instances(InstanceIds=old + new)["Reservations"]
        for i in r["Instances"]
    }
    assert {images[i] for i in old} == {"ami-12c6146b"}
    assert {images[i] for i in new} == {"ami-1e749f67"}


def test_spot_prices_move_and_are_served_by_describe_spot_price_history(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    emulator, clock, ec2 = _emulator(ec2_emulator_factory, market={"spot_price_step_seconds": 60})
    start = datetime.fromtimestamp(clock.now(), UTC)
    first = ec2.describe_spot_price_history(InstanceTypes=["m5.large"])["SpotPriceHistory"]
    assert {h["AvailabilityZone"] for h in first} == {f"us-east-1{z}" for z in "abcdef"}
    clock.advance(3600)
    history = ec2.describe_spot_price_history(
        InstanceTypes=["m5.large"], AvailabilityZone="us-east-1a", StartTime=start
    )["SpotPriceHistory"]
    assert len(history) == 61  # a change a minute, and the price as of the start
    prices = [float(h["SpotPrice"]) for h in history]
    assert len(set(prices)) > 10 and max(prices) < 0.096
    assert history[0]["Timestamp"] > history[-1]["Timestamp"]  # newest first
    truth_price = emulator.app.ec2._regions["us-east-1"].model.prices.spot(
        "m5.large", "us-east-1a", clock.now()
    )
    assert prices[0] == pytest.approx(truth_price)
    latest = ec2.describe_spot_price_history(InstanceTypes=["m5.large", "c5.large"])
    assert {(h["InstanceType"], h["AvailabilityZone"]) for h in latest["SpotPriceHistory"]} >= {
        (t, z) for t in ("m5.large", "c5.large") for z in ZONES
    }


def test_each_allocation_strategy_chooses_what_it_should(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    sizes = {"*/*/spot": 5, "r5.large/us-east-1b/spot": 50}
    emulator, clock, ec2 = _emulator(
        ec2_emulator_factory, capacity={"pools": sizes}, throttling={"enabled": False}
    )
    template_id = _template(ec2, clock)
    model = emulator.app.ec2._regions["us-east-1"].model
    prices = {(t, z): model.prices.spot(t, z, clock.now()) for t in TYPES for z in ZONES}
    cheapest = min(prices, key=lambda pool: prices[pool])
    deep = _fleet(ec2, template_id, 8, token="a", strategy="capacity-optimized")
    assert _pools(deep) == {("r5.large", "us-east-1b")}
    # Eight fit only the deep pool: price-capacity-optimized takes it whatever its price.
    assert _pools(_fleet(ec2, template_id, 8, token="b")) == {("r5.large", "us-east-1b")}
    # Three fit every pool: the cheapest of them.
    assert _pools(_fleet(ec2, template_id, 3, token="c")) == {cheapest}
    assert _pools(_fleet(ec2, template_id, 2, token="d", strategy="lowest-price")) == {cheapest}
    on_demand = _fleet(
        ec2, template_id, 2, token="e", market="on-demand", strategy="lowest-price", zones=ZONES[:1]
    )
    assert _pools(on_demand) == {("c5.large", "us-east-1a")}
    prioritized = _fleet(
        ec2,
        template_id,
        2,
        token="f",
        market="on-demand",
        strategy="prioritized",
        zones=ZONES[:1],
        priorities={"r5.large": 0, "m5.large": 1},
    )
    assert _pools(prioritized) == {("r5.large", "us-east-1a")}
    assert {g["Lifecycle"] for g in prioritized["Instances"]} == {"on-demand"}


def test_overrides_by_subnet_launch_in_the_subnets_zone(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    emulator, clock, ec2 = _emulator(ec2_emulator_factory)
    template_id = _template(ec2, clock)
    subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    chosen = sorted(subnets)[:2]
    answer = ec2.create_fleet(
        ClientToken="by-subnet",
        Type="instant",
        TargetCapacitySpecification={"TotalTargetCapacity": 3, "DefaultTargetCapacityType": "spot"},
        SpotOptions={"AllocationStrategy": "capacity-optimized"},
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template_id, "Version": "1"},
                "Overrides": [{"InstanceType": "c5.large", "SubnetId": s} for s in chosen],
            }
        ],
    )
    [group] = answer["Instances"]
    subnet = group["LaunchTemplateAndOverrides"]["Overrides"]["SubnetId"]
    assert subnet == chosen[0]
    truth = {t.instance_id: t for t in emulator.truth()}
    assert {truth[i].availability_zone for i in group["InstanceIds"]} == {subnets[subnet]}
    clock.advance(600)
    shown = ec2.describe_instances(InstanceIds=group["InstanceIds"])["Reservations"]
    assert {i["SubnetId"] for r in shown for i in r["Instances"]} == {subnet}


def test_the_control_api_shows_each_pools_price_and_room(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    sizes = {"m5.large/us-east-1a/spot": 2}
    emulator, clock, ec2 = _emulator(ec2_emulator_factory, capacity={"pools": sizes})
    _fleet(ec2, _template(ec2, clock), 1, types=("m5.large",), zones=("us-east-1a",))
    url = f"{emulator.endpoint_url}/_steadyscale/pools?instance_types=m5.large,c5.large"
    with urllib.request.urlopen(url, timeout=10) as answer:
        pools = json.load(answer)["pools"]
    by_pool = {(p["instance_type"], p["availability_zone"], p["market"]): p for p in pools}
    assert len(by_pool) == 2 * 6 * 2
    assert by_pool[("m5.large", "us-east-1a", "spot")]["room"] == 1
    assert by_pool[("m5.large", "us-east-1b", "spot")]["room"] is None
    assert by_pool[("c5.large", "us-east-1a", "on-demand")]["hourly_price"] == 0.085
    spot = by_pool[("c5.large", "us-east-1a", "spot")]["hourly_price"]
    assert 0 < spot < 0.085
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(f"{emulator.endpoint_url}/_steadyscale/pools", timeout=10)
    assert bad.value.code == 400
