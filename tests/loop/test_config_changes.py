"""Invariant I9 across a restart with another config: a config change never takes capacity
that is in use. Judged by the emulator's ground truth, on a fake clock, tick by tick.

A renamed node type keeps its nodes (re-labelled, nothing launched or terminated); a
removed type's demanded nodes are replaced before they are terminated (make before
break), with at most max_surge extra nodes at a time; a changed node_config (a new AMI)
is rolled out the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steadyscale.core.lifecycle import Status
from steadyscale.emulator import Fault
from steadyscale.loop.autoscaler import Autoscaler
from tests.cluster import Cluster, Harness, cluster_config

ClusterFactory = Callable[..., Cluster]
NODE = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
DEMAND = 6  # bundles of {CPU: 2}: one node each


def _types(**node_configs: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"node_config": config, "resources": {"CPU": 2}, "max_workers": 50}
        for name, config in node_configs.items()
    }


def _six_ready(cluster_factory: ClusterFactory) -> Cluster:
    cluster = cluster_factory("realistic", available_node_types=_types(cpu=NODE))
    cluster.demand(DEMAND)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == DEMAND, max_ticks=60)
    return cluster


def _restart(cluster: Harness, **config: Any) -> None:
    """Stop the daemon and start another on the same ledger and EC2 with ``config``: a new
    autoscaler knows only what the ledger tells it."""
    new = cluster_config(provider=cluster.config.provider.model_dump(), **config)
    old = cluster.autoscaler
    cluster.autoscaler = Autoscaler(
        new, old.provider, cluster.ledger, cluster.clock, metrics=old.metrics, health=old.health
    )
    cluster.config = new


def _live(cluster: Cluster) -> set[str]:
    """Instances EC2 runs or starts (ground truth): shutting down ones are on their way out."""
    return {i.instance_id for i in cluster.truth() if i.state.value in ("pending", "running")}


def _ready_capacity(cluster: Cluster) -> int:
    """Nodes the ledger has ready, not being terminated, whose instance EC2 really runs."""
    running = {i.instance_id for i in cluster.truth() if i.state.value == "running"}
    return sum(
        1
        for r in cluster.autoscaler.records.values()
        if r.status is Status.READY and r.instance_id in running
    )


def _ready_bundles(cluster: Cluster) -> int:
    """Bundles of {CPU: 2} the ready nodes can hold, by what their instances really are: an
    m5.large holds one, an m5.xlarge two."""
    per_node = {"m5.large": 1, "m5.xlarge": 2}
    running = {i.instance_id: i for i in cluster.truth() if i.state.value == "running"}
    return sum(
        per_node[running[r.instance_id].instance_type]
        for r in cluster.autoscaler.records.values()
        if r.status is Status.READY and r.instance_id in running
    )


def _image_ids(cluster: Cluster, ids: set[str]) -> set[str]:
    reservations = cluster.emulator.client().describe_instances(InstanceIds=sorted(ids))
    return {i["ImageId"] for r in reservations["Reservations"] for i in r["Instances"]}


def test_a_renamed_node_type_keeps_its_nodes_re_labelled_not_replaced(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    before = _live(cluster)
    launches, terminates = cluster.launches(), cluster.emulator.calls.count("TerminateInstances")
    _restart(cluster, available_node_types=_types(cpu2=NODE))

    for _ in range(30):
        report = cluster.tick()
        assert _ready_capacity(cluster) == DEMAND  # the demand never lost a ready node
    assert _live(cluster) == before
    assert cluster.launches() == launches
    assert cluster.emulator.calls.count("TerminateInstances") == terminates
    assert report.settled
    assert {r.node_type for r in cluster.autoscaler.active_records()} == {"cpu2"}
    assert {r.node_type for r in cluster.ledger.nodes()} == {"cpu2"}
    relabel = [e for r in cluster.reports for e in r.events if e.kind == "relabel"]
    assert [e.count for e in relabel] == [DEMAND]


def test_removing_a_demanded_node_type_replaces_its_nodes_before_terminating_them(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    before = _live(cluster)
    launches = cluster.launches()
    other = {**NODE, "InstanceType": "m5.xlarge"}
    _restart(cluster, available_node_types=_types(other=other), max_surge=2)

    def each(c: Cluster) -> None:
        assert _ready_capacity(c) >= DEMAND  # make before break, every tick
        assert len(_live(c)) <= DEMAND + 2  # at most max_surge extra nodes at any time
        if c.emulator.calls.count("TerminateInstances"):
            assert c.launches() > launches  # replacements launched first

    cluster.run(lambda r: r.settled and not (_live(cluster) & before), max_ticks=120, each=each)
    after = _live(cluster)
    assert len(after) == DEMAND
    assert {i.instance_type for i in cluster.truth() if i.instance_id in after} == {"m5.xlarge"}
    assert len({i.instance_id for i in cluster.truth()}) == 2 * DEMAND  # nothing launched twice
    gone = [r for r in cluster.autoscaler.records.values() if r.instance_id in before]
    assert all(r.status is Status.TERMINATED for r in gone)
    assert {h.reason for r in gone for h in r.history if h.status is Status.TERMINATING} == {
        "retired: node type cpu was removed; its demand is on ready replacements"
    }


def test_a_new_image_is_rolled_out_at_most_max_surge_extra_nodes_at_a_time(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    before = _live(cluster)
    new_image = {**NODE, "ImageId": "ami-87654321"}
    _restart(cluster, available_node_types=_types(cpu=new_image), max_surge=1)

    def each(c: Cluster) -> None:
        assert _ready_capacity(c) >= DEMAND
        assert len(_live(c)) <= DEMAND + 1

    cluster.run(lambda r: r.settled and not (_live(cluster) & before), max_ticks=200, each=each)
    after = _live(cluster)
    assert len(after) == DEMAND
    assert _image_ids(cluster, after) == {"ami-87654321"}
    reasons = {
        h.reason
        for r in cluster.autoscaler.records.values()
        if r.instance_id in before
        for h in r.history
        if h.status is Status.TERMINATING
    }
    assert reasons == {
        "retired: node type cpu's node_config changed (ImageId); its demand is on ready "
        "replacements"
    }


def test_a_removed_type_without_demand_goes_at_once_and_is_not_replaced(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    launches = cluster.launches()
    cluster.demand(0)
    _restart(cluster, available_node_types=_types(other={**NODE, "InstanceType": "m5.xlarge"}))
    cluster.tick()  # no idle timeout to wait for: nothing holds them
    assert cluster.count(Status.TERMINATING) + cluster.count(Status.TERMINATED) == DEMAND
    cluster.run(lambda r: r.settled, max_ticks=60)
    assert cluster.launches() == launches
    assert not _live(cluster)


def test_retiring_nodes_of_a_removed_type_still_hold_their_demand_after_another_restart(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    config = {"available_node_types": _types(other={**NODE, "InstanceType": "m5.xlarge"})}
    _restart(cluster, max_surge=2, **config)
    cluster.tick()
    _restart(cluster, max_surge=2, **config)  # the ledger still knows what a cpu node holds

    def each(c: Cluster) -> None:
        assert _ready_capacity(c) >= DEMAND
        assert len(_live(c)) <= DEMAND + 2

    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == DEMAND, each=each)
    assert {r.node_type for r in cluster.autoscaler.active_records()} == {"other"}


def test_the_instances_gauge_of_a_renamed_type_falls_to_zero(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    _restart(cluster, available_node_types=_types(cpu2=NODE))
    cluster.tick()
    registry = cluster.autoscaler.metrics.registry

    def ready(node_type: str) -> float | None:
        labels = {"node_type": node_type, "status": "ready"}
        return registry.get_sample_value("steadyscale_instances", labels)

    assert (ready("cpu"), ready("cpu2")) == (0, DEMAND)


def test_a_rename_while_a_launch_answer_was_lost_resends_it_as_it_was_sent(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", available_node_types=_types(cpu=NODE))
    cluster.emulator.inject(Fault.LOST_RESPONSE, "RunInstances", count=3)
    cluster.demand(DEMAND)
    cluster.tick()
    assert cluster.count(Status.REQUESTED) == DEMAND  # EC2 launched them; we have no ids
    _restart(cluster, available_node_types=_types(cpu2=NODE))
    cluster.tick()  # the resend: same ClientToken, same parameters (the node-type tag too)
    assert cluster.count(Status.LAUNCH_FAILED) == 0
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == DEMAND, max_ticks=60)
    assert len(cluster.truth()) == DEMAND  # not one launched twice
    assert {r.node_type for r in cluster.autoscaler.active_records()} == {"cpu2"}


def test_a_removed_type_is_replaced_by_a_type_that_holds_more_bundles_per_node(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    before = _live(cluster)
    big = {"node_config": {**NODE, "InstanceType": "m5.xlarge"}, "resources": {"CPU": 4}}
    _restart(cluster, available_node_types={"big": {**big, "max_workers": 50}}, max_surge=1)

    def each(c: Cluster) -> None:
        assert _ready_bundles(c) >= DEMAND  # make before break, in bundles

    # Three new nodes hold what six old ones did: the replacement still goes ahead.
    cluster.run(lambda r: r.settled and not (_live(cluster) & before), max_ticks=200, each=each)
    after = _live(cluster)
    assert len(after) == DEMAND // 2
    assert {i.instance_type for i in cluster.truth() if i.instance_id in after} == {"m5.xlarge"}


def test_a_bigger_instance_type_is_rolled_out_without_dropping_a_busy_node(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _six_ready(cluster_factory)
    before = _live(cluster)
    bigger = {
        "cpu": {
            "node_config": {**NODE, "InstanceType": "m5.xlarge"},
            "resources": {"CPU": 4},  # the old nodes still offer 2 each
            "max_workers": 50,
        }
    }

    def each(c: Cluster) -> None:
        assert _ready_bundles(c) >= DEMAND

    _restart(cluster, available_node_types=bigger, max_surge=1)
    cluster.tick()
    each(cluster)
    _restart(cluster, available_node_types=bigger, max_surge=1)  # the ledger still knows
    cluster.run(lambda r: r.settled and not (_live(cluster) & before), max_ticks=200, each=each)
    after = _live(cluster)
    assert len(after) == DEMAND // 2
    assert {i.instance_type for i in cluster.truth() if i.instance_id in after} == {"m5.xlarge"}
