"""The boto3 provider's fleet calls against the emulator: launch templates (not visible
yet is a state), CreateFleet instant with per-override errors as ``FleetError``, a lost
answer resent under the same ClientToken, and the latest spot prices; then the whole loop's
fleet path over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import Status
from steadyscale.emulator import Emulator, Fault, build_settings
from steadyscale.errors import CloudUnavailable
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.protocol import (
    FleetOverride,
    FleetSpec,
    NotVisibleYet,
    TemplateVersion,
)
from steadyscale.retries.clock import FakeClock
from tests.cluster import QUIET_ERRORS, make_cluster
from tests.providers.emulated import emulated_provider

TYPES = ("m5.large", "c5.large", "r5.large")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, FakeClock, EC2Provider]]:
    pools = getattr(request, "param", {})
    clock = FakeClock(1_700_000_000.0)
    settings = build_settings(
        profile="realistic",
        overrides={
            "errors": QUIET_ERRORS,
            "spot": {"interruption_rate_per_hour": 0},
            "capacity": {"pools": pools},
        },
    )
    with Emulator(settings, clock=clock) as emu:
        yield (
            emu,
            clock,
            emulated_provider(emu.endpoint_url, clock, seed=1),
        )


def _template(provider: EC2Provider, clock: FakeClock) -> TemplateVersion:
    made = provider.create_launch_template("steadyscale-c-cpu", {"ImageId": "ami-12c6146b"}, "t-1")
    assert made.version == 1 and made.template_id.startswith("lt-")
    assert isinstance(provider.launch_template_versions("steadyscale-c-cpu"), NotVisibleYet)
    clock.advance(60)
    [shown] = provider.launch_template_versions("steadyscale-c-cpu")  # type: ignore[misc]
    assert shown.template_id == made.template_id and shown.data["ImageId"] == "ami-12c6146b"
    return shown


def _spec(template: TemplateVersion, count: int, token: str = "ss-r-1") -> FleetSpec:
    return FleetSpec(
        request_id=token.removeprefix("ss-"),
        client_token=token,
        node_type="cpu",
        count=count,
        launch_template=template,
        overrides=tuple(FleetOverride(t, availability_zone=z) for t in TYPES for z in ZONES),
        market="spot",
        allocation_strategy="lowest-price",
    )


def test_a_template_is_not_visible_at_first_and_a_fleet_launches_from_it(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    template = _template(provider, clock)
    result = provider.launch_fleet(_spec(template, 4))
    assert len(result.instances) == 4 and result.errors == ()
    assert result.fleet_id is not None and result.fleet_id.startswith("fleet-")
    truth = {t.instance_id: t for t in emu.truth()}
    for inst in result.instances:
        tracked = truth[inst.instance_id]
        assert inst.lifecycle == "spot" and tracked.market == "spot"
        assert (inst.instance_type, inst.availability_zone) == (
            tracked.instance_type,
            tracked.availability_zone,
        )
        assert inst.tags[TAG_CLUSTER] == "c" and inst.tags[TAG_REQUEST] == "r-1"
    assert provider.calls_by_action()["CreateFleet"] == 1


@pytest.mark.parametrize("world", [{"*/*/spot": 1}], indirect=True)
def test_partial_fulfilment_names_each_pool_that_gave_nothing(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    _, clock, provider = world
    result = provider.launch_fleet(_spec(_template(provider, clock), 12))
    assert len(result.instances) == 9  # one per pool
    assert result.errors and all(e.code == "InsufficientInstanceCapacity" for e in result.errors)
    assert {(e.instance_type, e.availability_zone) for e in result.errors} <= {
        (t, z) for t in TYPES for z in ZONES
    }


def test_a_lost_answer_resent_with_the_same_token_launches_nothing_more(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    spec = _spec(_template(provider, clock), 3)
    emu.inject(Fault.LOST_RESPONSE, "CreateFleet")
    with pytest.raises(CloudUnavailable):
        provider.launch_fleet(spec)
    again = provider.launch_fleet(spec)
    assert {i.instance_id for i in again.instances} == {t.instance_id for t in emu.truth()}
    assert len(emu.truth()) == 3


def test_spot_prices_are_the_latest_per_type_and_zone(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    _, _, provider = world
    prices = provider.spot_prices(["m5.large", "c5.large"])
    assert {(t, z) for t in ("m5.large", "c5.large") for z in ZONES} <= set(prices)
    assert all(0 < p < 0.1 for p in prices.values())


def test_the_loop_launches_a_fleet_node_type_over_http() -> None:
    cluster = make_cluster(
        "realistic",
        emulator={"spot": {"interruption_rate_per_hour": 0}},
        available_node_types={
            "cpu": {
                "node_config": {"ImageId": "ami-12c6146b"},
                "resources": {"CPU": 2},
                "max_workers": 20,
                "market": "spot",
                "instance_types": list(TYPES),
            }
        },
    )
    try:
        cluster.demand(5)
        cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 5, max_ticks=60)
        assert len(cluster.alive()) == 5
        assert cluster.emulator.calls.count("CreateFleet", "ok") == 1
        assert all(r.hourly_price for r in cluster.autoscaler.records.values())
    finally:
        cluster.emulator.stop()
