"""Capacity fallback, spot and interruption, client-side pacing (F7, F8, F10)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from steadyscale.core.lifecycle import Status
from steadyscale.emulator import Emulator, build_settings
from steadyscale.errors import Throttled
from steadyscale.loop.autoscaler import TickReport
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.protocol import ClientOptions
from steadyscale.retries.clock import FakeClock
from tests.cluster import Cluster

ClusterFactory = Callable[..., Cluster]
NODE = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}


def _with_subnets(cluster: Cluster, zones: list[str], **node: Any) -> None:
    subnets = cluster.emulator.client().describe_subnets()["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
    provider = cluster.config.provider.model_copy(update={"subnets": [by_zone[z] for z in zones]})
    types = {"cpu": cluster.config.available_node_types["cpu"].model_copy(update=node)}
    config = cluster.config.model_copy(update={"provider": provider, "available_node_types": types})
    cluster.autoscaler.config = config
    cluster.config = config


def _zones(cluster: Cluster) -> dict[str, int]:
    zones: dict[str, int] = {}
    for inst in cluster.alive():
        zones[inst.availability_zone] = zones.get(inst.availability_zone, 0) + 1
    return zones


def _running(cluster: Cluster, n: int) -> Callable[[TickReport], bool]:
    return lambda r: r.settled and cluster.count(Status.READY) == n


def test_a_pool_without_capacity_falls_back_within_one_tick_and_is_retried_after_the_ttl(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory(
        "realistic",
        unavailable_offering_ttl_seconds=180,
        emulator={"capacity": {"pools": {"m5.large/us-east-1a": 0}}},
    )
    _with_subnets(cluster, ["us-east-1a", "us-east-1b"])
    cluster.demand(4)
    cluster.tick()
    assert cluster.count(Status.LAUNCH_FAILED) == 4
    cluster.tick()  # the very next tick launches in the next subnet
    assert cluster.count(Status.LAUNCHED) + cluster.count(Status.PENDING) == 4
    assert _zones(cluster) == {"us-east-1b": 4}
    # Past the TTL the preferred subnet is tried again first.
    cluster.clock.advance(180)
    cluster.demand(6)
    cluster.tick()
    latest = max(cluster.ledger.requests(), key=lambda r: r.created_at)
    first_subnet = cluster.config.provider.subnets[0]
    assert latest.subnet_id == first_subnet and latest.error == "InsufficientInstanceCapacity"


def test_a_partial_launch_is_completed_elsewhere(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(
        "realistic", emulator={"capacity": {"pools": {"m5.large/us-east-1a": 3}}}
    )
    _with_subnets(cluster, ["us-east-1a", "us-east-1b"])
    cluster.demand(5)
    cluster.run(_running(cluster, 5), max_ticks=80)
    assert _zones(cluster) == {"us-east-1a": 3, "us-east-1b": 2}
    assert len(cluster.truth()) == 5


def test_spot_out_of_capacity_falls_back_to_on_demand_when_allowed(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", emulator={"capacity": {"pools": {"*/*/spot": 0}}})
    _with_subnets(cluster, ["us-east-1a"], market="spot", spot_fallback_to_on_demand=True)
    cluster.demand(3)
    cluster.run(_running(cluster, 3), max_ticks=80)
    assert {i.market for i in cluster.alive()} == {"on-demand"}


def test_spot_without_fallback_waits_instead_of_paying_on_demand(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", emulator={"capacity": {"pools": {"*/*/spot": 0}}})
    _with_subnets(cluster, ["us-east-1a"], market="spot")
    cluster.demand(2)
    for _ in range(10):
        cluster.tick()
    assert cluster.alive() == []
    assert cluster.count(Status.READY) == 0


def test_an_interrupted_spot_node_is_replaced_and_its_pool_set_aside(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic")
    _with_subnets(cluster, ["us-east-1a", "us-east-1b"], market="spot")
    cluster.demand(3)
    cluster.run(_running(cluster, 3), max_ticks=80)
    victim = next(i.instance_id for i in cluster.alive())
    assert cluster.emulator.interrupt([victim]) == [victim]
    cluster.run(
        lambda r: (
            cluster.autoscaler.interruptions == 1 and cluster.count(Status.READY) == 3 and r.settled
        ),
        max_ticks=80,
    )
    assert len(cluster.truth()) == 4  # one replacement, nothing more
    replacement = cluster.truth()[-1]
    assert replacement.market == "spot" and replacement.availability_zone == "us-east-1b"


def test_client_side_pacing_keeps_ec2_throttling_rare(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory("realistic", idle_timeout_minutes=0, upscaling_speed=2)
    cluster.demand(150)
    cluster.run(_running(cluster, 150), max_ticks=300)
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=300)
    calls = cluster.emulator.calls
    assert calls.count(outcome="RequestLimitExceeded") <= 0.01 * calls.count()


def test_a_call_over_its_budget_is_skipped_not_sent() -> None:
    clock = FakeClock(0.0)
    with Emulator(build_settings(profile="none"), clock=clock) as emu:
        provider = EC2Provider(
            cluster_name="c",
            region="us-east-1",
            clock=clock,
            endpoint_url=emu.endpoint_url,
            credentials={"aws_access_key_id": "t", "aws_secret_access_key": "t"},
            options=ClientOptions(
                rate_limits={"DescribeInstances": (2, 0.1)}, rate_limit_max_wait=1.0
            ),
        )
        provider.list_cluster()
        provider.list_cluster()
        with pytest.raises(Throttled) as caught:
            provider.list_cluster()  # the next token is 10 s away
        assert caught.value.code == "ClientThrottled"
        assert emu.calls.count("DescribeInstances") == 2
        clock.advance(9.5)
        provider.list_cluster()  # half a second away: waits for it instead
        assert clock.sleeps and clock.sleeps[-1] == pytest.approx(0.5)


def test_launches_stay_within_the_instance_bucket(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(
        "realistic",
        provider={
            "type": "emulator",
            "rate_limits": {"instances:RunInstances": {"capacity": 50, "refill_per_second": 2}},
        },
    )
    cluster.demand(80)
    cluster.tick()
    assert len(cluster.truth()) == 50  # the rest waits for tokens, unrequested
    assert cluster.count(Status.REQUESTED) == 0
    cluster.run(_running(cluster, 80), max_ticks=120)
    assert len(cluster.truth()) == 80
