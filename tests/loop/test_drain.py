"""Usage reports and the drain against the emulator, on a fake clock: scale-down never
terminates a node the workload reports busy (by the emulator's ground truth and the
workload's own record); a drain ends with the workload's ack, with its timeout, or, for a
node the workload never reported on, once its hook succeeded; the emulator's control API
records every drain call as ground truth."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.ops.status import collect_status, render_status
from steadyscale.store.marks import MarkKind, Marks, NodeMark
from steadyscale.store.workload import UsageReport
from tests.cluster import Cluster, cluster_config

ClusterFactory = Callable[..., Cluster]
CPU = {
    "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
    "resources": {"CPU": 2},
    "max_workers": 20,
}


def _cluster(factory: ClusterFactory, drain: dict[str, Any] | None = None, **cpu: Any) -> Cluster:
    """A cluster whose ``cpu`` type has ``drain`` (a hook URL under ``{emulator}`` is the
    emulator's control API) and the other keys given."""
    cluster = factory("realistic")
    node_type: dict[str, Any] = {**CPU, **cpu}
    if drain is not None:
        drain = copy.deepcopy(drain)
        hook = drain.get("hook", {}).get("http")
        if hook is not None:
            hook["url"] = hook["url"].replace("{emulator}", cluster.emulator.endpoint_url)
        node_type["drain"] = drain
    cluster.config = cluster_config(available_node_types={"cpu": node_type})
    cluster.autoscaler.config = cluster.config
    return cluster


EMULATOR_HOOK = {"http": {"url": "{emulator}/_steadyscale/drain/{instance_id}"}}


@dataclass
class Workload:
    """A worker pool as steadyscale sees it: it reports each tick which nodes it runs
    on, and acks the drain of a node it does not need (its own record of what it ran)."""

    cluster: Cluster
    busy: set[str] = field(default_factory=set)  # instance ids it runs jobs on
    acks: bool = True
    acked: list[str] = field(default_factory=list)
    ran_on_terminated: list[str] = field(default_factory=list)

    def __call__(self, cluster: Cluster) -> None:
        now = cluster.clock.now()
        live = [r for r in cluster.ledger.nodes() if r.status in (Status.READY, Status.DRAINING)]
        cluster.ledger.report_usage(
            [
                UsageReport(
                    node=r.instance_id or r.node_id,
                    busy=r.instance_id in self.busy,
                    ttl_seconds=30,
                    reporter="pool",
                )
                for r in live
            ],
            at=now,
        )
        for r in live:
            wanted = r.status is Status.DRAINING and r.instance_id not in self.busy
            if (
                wanted
                and self.acks
                and cluster.ledger.ack_drain(r.instance_id or r.node_id, by="pool", at=now)
            ):
                self.acked.append(r.node_id)
        gone = {i.instance_id for i in cluster.truth() if i.state.value != "running"}
        self.ran_on_terminated.extend(sorted(self.busy & gone))


def _ready(cluster: Cluster, count: int) -> list[NodeRecord]:
    cluster.demand(count)
    cluster.run(lambda r: cluster.count(Status.READY) == count, max_ticks=100)
    return sorted(
        (r for r in cluster.autoscaler.records.values() if r.status is Status.READY),
        key=lambda r: (r.created_at, r.node_id),
    )


def _statuses(cluster: Cluster, node_id: str) -> list[Status]:
    [record] = [
        r
        for r in cluster.ledger.nodes(include_terminal=True, with_history=True)
        if r.node_id == node_id
    ]
    return [e.status for e in record.history]


def test_scale_down_with_usage_reports_never_terminates_a_busy_node(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory, scale_down="reported")
    nodes = _ready(cluster, 4)
    # The workload runs on the two newest nodes, the ones packing would leave empty.
    workload = Workload(cluster, busy={r.instance_id or "" for r in nodes[2:]})
    cluster.demand(2)
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 2, max_ticks=200, each=workload)
    for _ in range(30):  # and long after: nothing else goes
        cluster.tick()
        workload(cluster)
    truth = {i.instance_id: i.state.value for i in cluster.truth()}
    assert {truth[r.instance_id or ""] for r in nodes[2:]} == {"running"}
    assert {truth[r.instance_id or ""] for r in nodes[:2]} == {"terminated"}
    assert workload.ran_on_terminated == []
    assert sorted(workload.acked) == sorted(r.node_id for r in nodes[:2])
    for record in nodes[2:]:
        assert Status.DRAINING not in _statuses(cluster, record.node_id)

    # Once the book forgot the terminated nodes, the drainer keeps nothing of them either.
    cluster.clock.advance(2 * 3600)
    cluster.run(lambda r: len(cluster.autoscaler.records) == 2, max_ticks=50, each=workload)
    cluster.tick()  # (it reads usage, and forgets with the book, at the start of a tick)
    assert cluster.autoscaler.drainer.heard == {r.node_id for r in nodes[2:]}


def test_a_drain_waits_for_the_workloads_ack(cluster_factory: ClusterFactory) -> None:
    cluster = _cluster(cluster_factory, drain={"hook": EMULATOR_HOOK, "timeout_seconds": 3600})
    [node] = _ready(cluster, 1)
    workload = Workload(cluster, acks=False)
    workload(cluster)  # heard of: its hook alone does not end the drain
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.DRAINING) == 1, max_ticks=50, each=workload)
    assert cluster.autoscaler.drainer.settle(10)
    for _ in range(20):
        cluster.tick()
        workload(cluster)
    assert cluster.count(Status.DRAINING) == 1
    [call] = cluster.emulator.drains(node.instance_id)
    assert call["state"] == "running"
    workload.acks = True
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 1, max_ticks=50, each=workload)
    assert workload.acked == [node.node_id]
    assert _statuses(cluster, node.node_id)[-3:] == [
        Status.DRAINING,
        Status.TERMINATING,
        Status.TERMINATED,
    ]
    [record] = cluster.ledger.nodes(include_terminal=True, with_history=True)
    assert "the workload acknowledged" in record.history[-2].reason


def test_a_drain_never_acked_ends_at_its_timeout(cluster_factory: ClusterFactory) -> None:
    cluster = _cluster(cluster_factory, drain={"timeout_seconds": 60})
    [node] = _ready(cluster, 1)
    workload = Workload(cluster, acks=False)
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.DRAINING) == 1, max_ticks=50, each=workload)
    started = cluster.clock.now()
    cluster.run(lambda r: cluster.count(Status.TERMINATING) == 1, max_ticks=50, each=workload)
    assert cluster.clock.now() - started >= 60
    [record] = cluster.ledger.nodes(include_terminal=True, with_history=True)
    assert "drain timed out after 60s" in record.history[-1].reason
    assert cluster.emulator.drains() == []  # no hook configured
    assert node.instance_id in {i.instance_id for i in cluster.truth()}


def test_a_node_the_workload_never_heard_of_goes_once_its_hook_succeeded(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory, drain={"hook": EMULATOR_HOOK, "timeout_seconds": 3600})
    [node] = _ready(cluster, 1)
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.DRAINING) == 1, max_ticks=50)
    assert cluster.autoscaler.drainer.settle(10)
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 1, max_ticks=20)
    [call] = cluster.emulator.drains(node.instance_id)
    [record] = cluster.ledger.nodes(include_terminal=True, with_history=True)
    terminating = [e for e in record.history if e.status is Status.TERMINATING]
    assert "its drain hook succeeded" in terminating[0].reason
    assert call["at"] <= terminating[0].at
    outcome = cluster.autoscaler.metrics.drain_hooks.labels("cpu", "succeeded")
    assert outcome._value.get() == 1


def test_without_a_drain_block_or_usage_a_node_goes_at_once(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory)
    [node] = _ready(cluster, 1)
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.TERMINATING) + cluster.count(Status.TERMINATED) == 1)
    assert Status.DRAINING not in _statuses(cluster, node.node_id)


def test_a_draining_node_takes_no_demand(cluster_factory: ClusterFactory) -> None:
    cluster = _cluster(cluster_factory, drain={"timeout_seconds": 3600})
    [node] = _ready(cluster, 1)
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.DRAINING) == 1, max_ticks=50)
    shown = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
    assert shown.node_types["cpu"].counts["draining"] == 1 and "draining" in render_status(shown)
    cluster.demand(1)
    cluster.run(lambda r: cluster.count(Status.READY) == 1, max_ticks=100)
    assert cluster.count(Status.DRAINING) == 1
    [ready] = [r for r in cluster.autoscaler.records.values() if r.status is Status.READY]
    assert ready.node_id != node.node_id


def test_an_unhealthy_node_is_drained_before_it_is_replaced(
    cluster_factory: ClusterFactory,
) -> None:
    check = {"port": 8080, "failure_threshold": 1, "grace_seconds": 0, "interval_seconds": 5}
    cluster = _cluster(
        cluster_factory, drain={"hook": EMULATOR_HOOK, "timeout_seconds": 3600}, health_check=check
    )
    [node] = _ready(cluster, 1)
    cluster.emulator.set_node_health([node.instance_id or ""], False)
    cluster.run(lambda r: cluster.count(Status.DRAINING) == 1, max_ticks=20)
    assert cluster.autoscaler.drainer.settle(10)
    cluster.run(lambda r: node.status is Status.TERMINATED, max_ticks=20)
    [record] = [
        r
        for r in cluster.ledger.nodes(include_terminal=True, with_history=True)
        if r.node_id == node.node_id
    ]
    [draining] = [e for e in record.history if e.status is Status.DRAINING]
    assert "health checks" in draining.reason
    assert cluster.emulator.drains(node.instance_id)


def test_a_node_ec2_will_reclaim_is_drained_but_left_to_ec2(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory, drain={"hook": EMULATOR_HOOK, "timeout_seconds": 0})
    [node] = _ready(cluster, 1)
    cluster.autoscaler.drainer.warn([node.node_id], cluster.tick())
    assert node.status is Status.DRAINING
    assert cluster.autoscaler.drainer.settle(10)
    for _ in range(5):  # drained and past its timeout, yet not terminated by us
        cluster.tick()
    assert node.status is Status.DRAINING and cluster.emulator.drains(node.instance_id)
    cluster.emulator.interrupt([node.instance_id or ""])
    cluster.run(lambda r: node.status is Status.INTERRUPTED, max_ticks=20)
    assert Status.TERMINATING not in _statuses(cluster, node.node_id)


def test_a_drain_asked_through_the_ledger_starts_at_the_next_tick(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory)
    [node] = _ready(cluster, 1)
    assert cluster.ledger.ask_drain(node.instance_id or "", by="api", at=cluster.clock.now())
    cluster.tick()
    assert node.status is Status.DRAINING
    assert "drain asked by the workload" in node.history[-1].reason
    cluster.ledger.ack_drain(node.node_id, by="api", at=cluster.clock.now())
    cluster.run(lambda r: node.status is Status.TERMINATED, max_ticks=20)


def _restart(cluster: Cluster) -> None:
    """The daemon restarts on the same ledger (its drains under way were in memory)."""
    old = cluster.autoscaler
    assert old.drainer.settle(10)
    cluster.autoscaler = Autoscaler(
        cluster.config,
        old.provider,
        cluster.ledger,
        cluster.clock,
        metrics=old.metrics,
        health=old.health,
    )


def test_a_drain_under_way_starts_again_after_a_restart(cluster_factory: ClusterFactory) -> None:
    cluster = _cluster(cluster_factory, drain={"hook": EMULATOR_HOOK, "timeout_seconds": 3600})
    [node] = _ready(cluster, 1)
    cluster.autoscaler.drainer.start([node.node_id], {}, cluster.tick())
    _restart(cluster)
    cluster.tick()  # the new loop finds it draining, and calls its hook again
    assert cluster.autoscaler.drainer.settle(10)
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 1, max_ticks=20)
    assert len(cluster.emulator.drains(node.instance_id)) == 2


def test_a_restart_keeps_a_drains_start_its_reason_and_a_warning(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = _cluster(cluster_factory, drain={"timeout_seconds": 60})
    idle, warned = _ready(cluster, 2)
    cluster.autoscaler.drainer.start([idle.node_id], {idle.node_id: "idle for 5m"}, cluster.tick())
    cluster.autoscaler.drainer.warn([warned.node_id], cluster.tick())
    Marks(cluster.ledger.store).add(
        [NodeMark(warned.node_id, MarkKind.WARNED, cluster.clock.now(), None, "e-1")]
    )
    for _ in range(8):  # 40 s of the 60 s timeout pass before the restart
        cluster.tick()
    _restart(cluster)
    # The timeout runs from the drain's start, not from the restart: 20 s are left.
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 1, max_ticks=6)
    [record] = [
        r
        for r in cluster.ledger.nodes(include_terminal=True, with_history=True)
        if r.node_id == idle.node_id
    ]
    terminating = next(e for e in record.history if e.status is Status.TERMINATING)
    assert terminating.reason == "drain timed out after 60s without an ack; idle for 5m"
    # The warned node is EC2's to take: never terminated by us, whatever its timeout.
    for _ in range(30):
        cluster.tick()
    assert cluster.autoscaler.records[warned.node_id].status is Status.DRAINING


def test_a_failing_hook_is_counted_and_the_drain_waits_for_its_timeout(
    cluster_factory: ClusterFactory,
) -> None:
    failing = {"http": {"url": "{emulator}/_steadyscale/no-such-path/{instance_id}"}}
    cluster = _cluster(cluster_factory, drain={"hook": failing, "timeout_seconds": 60})
    [node] = _ready(cluster, 1)
    cluster.demand(0)
    cluster.run(lambda r: node.status is Status.DRAINING, max_ticks=50)
    started = cluster.clock.now()
    assert cluster.autoscaler.drainer.settle(10)
    cluster.run(lambda r: node.status is Status.TERMINATING, max_ticks=50)
    assert cluster.clock.now() - started >= 60
    assert "drain timed out" in node.history[-1].reason
    failed = cluster.autoscaler.metrics.drain_hooks.labels("cpu", "failed")
    assert failed._value.get() == 1
