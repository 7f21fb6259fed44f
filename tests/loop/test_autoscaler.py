"""The loop itself: durable intents, few API calls, and errors contained in a tick."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from steadyscale.core.lifecycle import Status
from tests.cluster import Cluster

ClusterFactory = Callable[..., Cluster]


def test_the_intent_and_its_client_token_are_durable_before_run_instances(
    cluster_factory: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = cluster_factory("realistic")
    seen: list[tuple[str, list[str]]] = []
    real_launch = cluster.autoscaler.provider.launch

    def spy(spec):  # type: ignore[no-untyped-def]
        requests = cluster.ledger.requests(open_only=True)
        nodes = cluster.ledger.nodes()
        seen.append((spec.client_token, [r.client_token for r in requests]))
        assert all(n.status is Status.REQUESTED and n.request_id == spec.request_id for n in nodes)
        return real_launch(spec)

    monkeypatch.setattr(cluster.autoscaler.provider, "launch", spy)
    cluster.demand(4)
    cluster.tick()
    assert seen and seen[0][0] in seen[0][1]
    assert all(r.instance_id for r in cluster.ledger.nodes())  # ids written at once


def test_steady_state_costs_one_listing_per_listing_interval(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", listing_interval_seconds=30)
    cluster.demand(20)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 20, max_ticks=100)
    before = cluster.emulator.calls.count("DescribeInstances")
    for _ in range(12):  # one minute of 5 s ticks
        cluster.tick()
    assert cluster.emulator.calls.count("DescribeInstances") - before == 2
    assert cluster.launches() == 1


def test_an_unexpected_error_is_contained_in_its_tick(
    cluster_factory: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = cluster_factory("realistic")
    cluster.demand(3)

    def broken() -> list[object]:
        raise RuntimeError("a bug in a dependency")

    monkeypatch.setattr(cluster.autoscaler.provider, "list_cluster", broken)
    report = cluster.tick()
    assert report.errors == ["RuntimeError: a bug in a dependency"]
    monkeypatch.undo()
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 3, max_ticks=100)


def test_capacity_errors_fall_back_to_another_node_type(cluster_factory: ClusterFactory) -> None:
    node_config = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
    cluster = cluster_factory(
        "realistic",
        emulator={"capacity": {"pools": {"m5.large/*": 0}}},
        available_node_types={
            "small": {"node_config": node_config, "resources": {"CPU": 2}, "priority": 1},
            "big": {
                "node_config": {**node_config, "InstanceType": "m5.2xlarge"},
                "resources": {"CPU": 8},
            },
        },
    )
    cluster.demand(2)
    cluster.tick()
    assert cluster.count(Status.LAUNCH_FAILED) == 2  # two "small" nodes: no capacity
    failed = next(
        r for r in cluster.autoscaler.records.values() if r.status is Status.LAUNCH_FAILED
    )
    assert failed.last_error and failed.last_error.startswith("InsufficientInstanceCapacity")
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 1, max_ticks=60)
    assert {
        r.node_type for r in cluster.autoscaler.records.values() if r.status is Status.READY
    } == {"big"}


def test_partial_fulfilment_requeues_the_shortfall(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(
        "realistic", emulator={"capacity": {"pools": {"m5.large/us-east-1a": 3}}}
    )
    cluster.demand(5)
    cluster.tick()
    assert cluster.count(Status.LAUNCHED) == 3
    assert cluster.count(Status.LAUNCH_FAILED) == 2
    failed = [r for r in cluster.autoscaler.records.values() if r.status is Status.LAUNCH_FAILED]
    assert "EC2 launched 3 of 5" in failed[0].history[-1].reason


def test_a_subnet_without_capacity_falls_back_to_the_next_subnet(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory(
        "realistic", emulator={"capacity": {"pools": {"m5.large/us-east-1a": 0}}}
    )
    subnets = cluster.emulator.client().describe_subnets()["Subnets"]
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets}
    provider = dict(cluster.config.provider.model_dump())
    provider["subnets"] = [by_zone["us-east-1a"], by_zone["us-east-1b"]]
    config = cluster.config.model_copy(
        update={
            "provider": cluster.config.provider.model_copy(update={"subnets": provider["subnets"]})
        }
    )
    cluster.autoscaler.config = config
    cluster.config = config
    cluster.demand(3)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 3, max_ticks=60)
    zones = {i.availability_zone for i in cluster.truth() if i.state.value == "running"}
    assert zones == {"us-east-1b"}
    assert cluster.count(Status.LAUNCH_FAILED) == 3  # the first try, in us-east-1a


def test_a_protected_instance_is_reported_and_the_rest_scale_down(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", idle_timeout_minutes=0)
    cluster.demand(3)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 3, max_ticks=60)
    victim = next(iter(cluster.autoscaler.records.values())).instance_id
    assert victim is not None
    cluster.emulator.client().modify_instance_attribute(
        InstanceId=victim, DisableApiTermination={"Value": True}
    )
    cluster.demand(0)
    for _ in range(20):
        cluster.tick()
    alive = [i.instance_id for i in cluster.alive()]
    assert alive == [victim]
    record = next(r for r in cluster.autoscaler.records.values() if r.instance_id == victim)
    assert record.status is Status.TERMINATING
    assert record.last_error and "OperationNotPermitted" in record.last_error


def test_finished_nodes_leave_memory_an_hour_later_but_stay_known(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic")
    cluster.demand(3)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 3, max_ticks=100)
    ids = {r.instance_id for r in cluster.autoscaler.records.values()}
    cluster.demand(0)
    cluster.run(lambda r: r.settled and cluster.count(Status.TERMINATED) == 3, max_ticks=200)
    # Within the hour they are still walked each tick; past it they are not.
    cluster.clock.advance(3600 - 120)
    cluster.run(lambda r: not cluster.autoscaler.records, max_ticks=100)
    assert (
        cluster.clock.now()
        - max(
            h.at
            for r in cluster.ledger.nodes(include_terminal=True, with_history=True)
            for h in r.history
        )
        >= 3600
    )
    # The ledger keeps them, and EC2 still listing the terminated instances is no stranger.
    assert {r.instance_id for r in cluster.ledger.nodes(include_terminal=True)} == ids
    assert ids <= cluster.autoscaler.known_ids
    report = cluster.tick()
    assert not report.errors and not [e for e in report.events if e.kind in ("gc", "adopt")]
