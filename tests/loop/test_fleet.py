"""The launcher's fleet path on the in-memory backend (the emulator's model, on a fake
clock): one CreateFleet per node type per tick across types and zones, each node's pool and
price recorded, per-override errors setting pools aside, the shortfall requeued, a lost
answer or a crash resent under the same ClientToken, launch templates versioned."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.app.runtime import build_health, build_metrics, memory_prober
from steadyscale.core.lifecycle import Status
from steadyscale.core.prices import on_demand_price
from steadyscale.core.resources import DemandItem
from steadyscale.emulator import Fault
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.loop.templates import template_name
from steadyscale.ops.status import collect_status, render_status
from tests.cluster import MemoryCluster, make_memory_cluster

TYPES = ["m5.large", "c5.large", "r5.large"]
SUBNETS = ["subnet-a", "subnet-b", "subnet-c"]  # us-east-1a, b, c on the memory backend


def _fleet_type(**node: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "node_config": {"ImageId": "ami-12345678"},
        "resources": {"CPU": 2},
        "max_workers": 100,
        "market": "spot",
        "instance_types": TYPES,
    }
    spec.update(node)
    return {"cpu": spec}


def _cluster(
    capacity: dict[str, int] | None = None,
    max_attempts: int = 3,
    pool_size: int | None = None,
    **node: Any,
) -> MemoryCluster:
    return make_memory_cluster(
        "realistic",
        emulator={"capacity": {"pools": capacity or {}, "default_pool_size": pool_size}},
        provider={"type": "memory", "subnets": SUBNETS, "max_attempts": max_attempts},
        available_node_types=_fleet_type(**node),
    )


def _ready(cluster: MemoryCluster, count: int) -> None:
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == count, max_ticks=80)


def test_a_fleet_launches_across_types_and_zones_with_one_call_per_tick() -> None:
    cluster = _cluster(pool_size=8)  # no pool holds them all
    cluster.demand(30)
    _ready(cluster, 30)
    truth = cluster.alive()
    assert len(truth) == 30
    assert {i.market for i in truth} == {"spot"}
    assert len({(i.instance_type, i.availability_zone) for i in truth}) > 1
    calls = cluster.memory.calls
    assert calls.count("RunInstances", "ok") == 0
    assert calls.count("CreateFleet", "ok") == 1  # all 30 in one call
    by_id = {i.instance_id: i for i in truth}
    for record in cluster.autoscaler.records.values():
        inst = by_id[record.instance_id or ""]
        assert (record.instance_type, record.availability_zone) == (
            inst.instance_type,
            inst.availability_zone,
        )
        assert record.hourly_price is not None
        assert abs(record.hourly_price - (inst.hourly_price or 0)) < 1e-9


def test_pools_out_of_capacity_are_set_aside_and_the_shortfall_requeued() -> None:
    # On demand, lowest price tries c5.large first (the cheapest), then m5.large.
    out = {f"c5.large/us-east-1{z}/on-demand": 0 for z in "abc"}
    out |= {"m5.large/us-east-1a/on-demand": 0, "m5.large/us-east-1b/on-demand": 4}
    cluster = _cluster(out, market="on-demand", allocation_strategy="lowest-price")
    cluster.demand(6)
    cluster.run(lambda r: cluster.count(Status.LAUNCHED) > 0, max_ticks=20)
    assert cluster.count(Status.LAUNCHED) == 6
    pools = {(i.instance_type, i.availability_zone) for i in cluster.alive()}
    assert pools == {("m5.large", "us-east-1b"), ("m5.large", "us-east-1c")}
    events = [e.message for r in cluster.reports for e in r.events if e.kind == "unavailable"]
    for subnet in SUBNETS:
        assert any(f"c5.large on-demand in {subnet} set aside" in m for m in events), events
    assert any("m5.large on-demand in subnet-a set aside" in m for m in events), events
    # The pool that gave less than asked is set aside too; the next fleet leaves all out.
    assert cluster.autoscaler.offerings.overrides("cpu") == tuple(
        o for o in cluster.autoscaler.offerings.overrides("cpu") if o.instance_type != "c5.large"
    )
    sent = {
        o.subnet_id
        for o in cluster.autoscaler.offerings.overrides("cpu")
        if o.instance_type == "m5.large"
    }
    assert sent == {"subnet-c"}
    cluster.demand(9)
    _ready(cluster, 9)
    assert len(cluster.alive()) == 9


def test_every_pool_out_of_capacity_fails_the_nodes_and_the_type() -> None:
    cluster = _cluster({"*/*/spot": 0})
    cluster.demand(4)
    cluster.tick()
    cluster.tick()
    assert cluster.alive() == []
    assert cluster.count(Status.LAUNCH_FAILED) >= 4
    assert "cpu" in cluster.autoscaler.offerings.unavailable_types()


def test_a_lost_answer_is_resent_with_the_same_token_and_launches_nothing_twice() -> None:
    cluster = _cluster(max_attempts=1)
    cluster.memory.inject(Fault.LOST_RESPONSE, "CreateFleet")  # the first one sent
    cluster.demand(5)
    _ready(cluster, 5)
    assert len(cluster.alive()) == 5
    calls = cluster.memory.calls
    assert calls.count("CreateFleet") == 2 and calls.count("CreateFleet", "ok") == 1
    [request] = cluster.ledger.requests()
    assert request.attempts == 2 and request.launched == 5


def test_a_crash_between_intent_and_answer_resends_the_same_fleet() -> None:
    cluster = _cluster()

    class CrashError(Exception):
        pass

    def crash(point: str) -> None:
        if point == "launch_sent":
            raise CrashError(point)

    cluster.autoscaler.launcher.crash = crash
    cluster.autoscaler.stop_on = (CrashError,)
    cluster.demand(6)
    for _ in range(30):
        try:
            cluster.tick()
        except CrashError:
            break
    launched = {i.instance_id for i in cluster.alive()}
    assert len(launched) == 6  # EC2 launched them; the ledger never heard
    # A new daemon on the same ledger and the same EC2.
    config = cluster.config
    metrics = build_metrics(config, cluster.clock)
    health = build_health(memory_prober(config, cluster.memory), cluster.clock, metrics)
    cluster.autoscaler = Autoscaler(
        config, cluster.memory, cluster.ledger, cluster.clock, metrics=metrics, health=health
    )
    _ready(cluster, 6)
    assert {i.instance_id for i in cluster.alive()} == launched
    assert {r.instance_id for r in cluster.autoscaler.records.values()} == launched


def test_a_template_not_visible_yet_makes_the_launch_wait_then_a_change_versions_it() -> None:
    cluster = _cluster()
    cluster.demand(2)
    first = cluster.tick()
    assert cluster.count(Status.REQUESTED) + cluster.count(Status.LAUNCHED) == 0
    assert not first.errors
    assert any(e.kind == "template" for e in first.events)
    _ready(cluster, 2)
    name = template_name("test", "cpu")
    versions = cluster.memory.launch_template_versions(name)
    assert isinstance(versions, list) and [v.version for v in versions] == [1]
    old = {i.instance_id for i in cluster.alive()}
    # A changed node_config: a new version, used by new launches; old nodes keep theirs.
    spec = cluster.config.available_node_types["cpu"]
    changed = spec.model_copy(update={"node_config": {"ImageId": "ami-87654321"}})
    config = cluster.config.model_copy(update={"available_node_types": {"cpu": changed}})
    cluster.autoscaler.config = config
    cluster.config = config
    cluster.demand(4)
    _ready(cluster, 4)
    versions = cluster.memory.launch_template_versions(name)
    assert isinstance(versions, list) and [v.version for v in versions] == [1, 2]
    assert versions[1].data["ImageId"] == "ami-87654321"
    # The changed config retires the old nodes, launched (and kept) at version 1.
    version = {i.instance_id: i.tags.get("aws:ec2launchtemplate:version") for i in cluster.truth()}
    assert {version[i] for i in old} == {"1"}
    assert {version[i.instance_id] for i in cluster.alive()} == {"2"}


def test_status_and_the_metric_show_the_cost_per_hour_by_node_type() -> None:
    cluster = _cluster(pool_size=4)
    cluster.demand(10)
    _ready(cluster, 10)
    expected = sum(i.hourly_price or 0 for i in cluster.alive())
    assert expected > 0
    report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
    assert report.node_types["cpu"].cost_per_hour == pytest.approx(expected, abs=1e-3)
    assert report.node_types["cpu"].unpriced == 0
    assert report.cost_per_hour == pytest.approx(expected, abs=1e-3)
    assert "$/hour" in render_status(report)
    gauge = cluster.autoscaler.metrics.registry.get_sample_value(
        "steadyscale_cost_per_hour", {"node_type": "cpu"}
    )
    assert gauge == pytest.approx(expected, abs=1e-3)


def test_single_type_on_demand_nodes_are_priced_from_the_table() -> None:
    cluster = make_memory_cluster("realistic")
    cluster.demand(2)
    _ready(cluster, 2)
    prices = {r.hourly_price for r in cluster.autoscaler.records.values()}
    assert prices == {on_demand_price("m5.large")}


def test_no_tick_sleeps_on_the_launch_bucket_launches_go_out_at_later_ticks() -> None:
    names = "abcdef"
    cluster = make_memory_cluster(
        "realistic",
        provider={
            "type": "memory",
            "rate_limits": {"RunInstances": {"capacity": 1, "refill_per_second": 0.5}},
        },
        available_node_types={
            n: {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {n: 1},
                "max_workers": 5,
            }
            for n in names
        },
    )
    now = cluster.clock.now()
    cluster.ledger.set_demand([DemandItem(bundle={n: 1}, count=1) for n in names], now)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == len(names), max_ticks=60)
    interval = cluster.config.loop_interval_seconds
    assert max(r.duration for r in cluster.reports) < interval
    assert cluster.clock.sleeps == [] or max(cluster.clock.sleeps) < interval
    assert len(cluster.alive()) == len(names)


def test_a_template_the_user_names_is_launched_at_its_version() -> None:
    cluster = _cluster(launch_template={"name": "mine", "version": 1})
    cluster.demand(2)
    report = cluster.tick()
    assert any("launch template mine version 1 not found" in e for e in report.errors)
    cluster.memory.create_launch_template("mine", {"ImageId": "ami-12345678"}, "t-mine")
    _ready(cluster, 2)
    versions = {i.tags.get("aws:ec2launchtemplate:version") for i in cluster.alive()}
    assert versions == {"1"}
    assert cluster.memory.calls.count("CreateLaunchTemplate", "ok") == 1  # the user's only
