"""The invariants I1-I6, each in its own test, checked through the emulator's ground truth.

The real autoscaler, EC2 provider and ledger run against the emulator (profiles realistic
and harsh) on a fake clock shared by both, so minutes of EC2 lag take seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from steadyscale.core.lifecycle import HAS_INSTANCE, Status
from steadyscale.emulator import Fault, Operation
from steadyscale.loop.autoscaler import TickReport
from tests.cluster import Cluster

ClusterFactory = Callable[..., Cluster]
PROFILES = ["realistic", "harsh"]


def _settled(report: TickReport) -> bool:
    return report.settled


def _all_running(cluster: Cluster, n: int) -> Callable[[TickReport], bool]:
    return lambda report: cluster.count(Status.READY) >= n and _settled(report)


@pytest.mark.parametrize("profile", PROFILES)
def test_i1_no_duplicate_scaling_0_to_200_and_back(
    cluster_factory: ClusterFactory, profile: str
) -> None:
    cluster = cluster_factory(profile, quiet_errors=False)
    cluster.demand(200)
    cluster.run(_all_running(cluster, 200), max_ticks=300)
    truth = cluster.truth()
    assert len(truth) == 200  # never launched beyond the need
    known = cluster.ledger.known_instance_ids()
    assert {i.instance_id for i in truth} <= known
    requests = {r.request_id: r.count for r in cluster.ledger.requests()}
    per_request: dict[str, int] = {}
    for inst in truth:
        rid = inst.tags["steadyscale:request-id"]
        per_request[rid] = per_request.get(rid, 0) + 1
    assert all(n <= requests[rid] for rid, n in per_request.items())

    cluster.demand(0)
    cluster.run(lambda r: _settled(r) and not cluster.alive(), max_ticks=300)
    assert len(cluster.truth()) == 200  # scaling down launched nothing


@pytest.mark.parametrize("profile", PROFILES)
def test_i2_no_leak_after_scale_to_zero_including_invisible_instances(
    cluster_factory: ClusterFactory, profile: str
) -> None:
    cluster = cluster_factory(profile, idle_timeout_minutes=0)
    cluster.demand(60)
    cluster.tick()  # launched: none visible yet
    assert cluster.count(Status.LAUNCHED) == 60
    cluster.demand(0)  # the need goes while EC2 shows none of them
    cluster.run(_settled, max_ticks=300)
    assert cluster.alive() == []
    assert cluster.count(Status.TERMINATED) == 60


@pytest.mark.parametrize("profile", PROFILES)
def test_i3_no_loss_every_launched_id_stays_in_the_ledger(
    cluster_factory: ClusterFactory, profile: str
) -> None:
    cluster = cluster_factory(profile, idle_timeout_minutes=0.5)
    seen_ids: set[str] = set()

    def check(c: Cluster) -> None:
        records = {r.instance_id: r for r in c.ledger.nodes(include_terminal=True) if r.instance_id}
        for inst in c.truth():
            seen_ids.add(inst.instance_id)
            record = records.get(inst.instance_id)
            assert record is not None, f"{inst.instance_id} launched but not in the ledger"
            if inst.state.value != "terminated":
                assert record.status in HAS_INSTANCE

    cluster.demand(80)
    cluster.run(_all_running(cluster, 80), max_ticks=200, each=check)
    cluster.demand(0)
    cluster.run(lambda r: _settled(r) and not cluster.alive(), max_ticks=300, each=check)
    assert len(seen_ids) == 80


def test_i4_never_stuck_no_exception_escapes_a_tick(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(
        "harsh",
        quiet_errors=False,
        emulator={
            "errors": {
                "server_error_probability": 0.15,
                "lost_response_probability": 0.1,
                "timeout_probability": 0.05,
                "timeout_seconds": 2,
            }
        },
    )
    cluster.emulator.inject(Fault.SERVER_ERROR, "DescribeInstances", count=10)
    cluster.demand(50)
    report = cluster.run(_all_running(cluster, 50), max_ticks=400)
    assert report.settled
    assert any(r.errors for r in cluster.reports)  # faults happened and were survived
    # Every tick finished within its bound, faults included.
    assert max(r.duration for r in cluster.reports) <= cluster.config.max_tick_seconds
    assert len(cluster.truth()) == 50


def test_i5_converges_within_boot_plus_lag_plus_a_few_ticks(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic")
    settings = cluster.emulator.settings
    start = cluster.clock.now()
    cluster.demand(100)
    cluster.run(_all_running(cluster, 100), max_ticks=200)
    took = cluster.clock.now() - start
    bound = settings.boot.max + settings.visibility.max + 4 * cluster.config.loop_interval_seconds
    assert took <= bound
    # And no slower than the slowest instance allowed, plus a few ticks.
    slowest = max(max(i.running_at or 0, i.visible_at[Operation.LISTING]) for i in cluster.truth())
    assert took <= slowest - start + 4 * cluster.config.loop_interval_seconds


def test_i6_invisible_instances_are_never_relaunched_nor_declared_dead(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory(
        "realistic",
        visibility_timeout_seconds=600,
        emulator={
            "visibility": {"median": 200, "p99": 300, "max": 400},
            "boot": {"median": 10, "p99": 20, "max": 30},
        },
    )
    cluster.demand(30)
    launches_after_first_tick = None
    for _ in range(70):  # 350 s: most are still invisible for much of it
        cluster.tick()
        if launches_after_first_tick is None:
            launches_after_first_tick = cluster.launches()
        assert cluster.count(Status.LOST) == 0
        assert cluster.count(Status.TERMINATED) == 0
        assert cluster.count(Status.LAUNCH_FAILED) == 0
        assert cluster.launches() == launches_after_first_tick == 1
    cluster.run(_all_running(cluster, 30), max_ticks=40)
    assert len(cluster.truth()) == 30


def test_terminate_of_a_just_launched_instance_is_retried_until_ec2_confirms(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory(
        "realistic",
        idle_timeout_minutes=0,
        emulator={"visibility_by_operation": {"terminate": {"median": 30, "p99": 40, "max": 60}}},
    )
    cluster.demand(5)
    cluster.tick()
    cluster.demand(0)
    cluster.tick()  # decides to terminate; EC2 answers NotFound for the fresh ids
    assert cluster.count(Status.TERMINATING) == 5
    assert cluster.emulator.calls.count("TerminateInstances", "InvalidInstanceID.NotFound") >= 1
    assert len(cluster.alive()) == 5  # still there: the terminate did not happen yet
    cluster.run(lambda r: _settled(r) and not cluster.alive(), max_ticks=100)
    assert cluster.count(Status.TERMINATED) == 5


def test_a_listing_that_flickers_changes_nothing(cluster_factory: ClusterFactory) -> None:
    cluster = cluster_factory(
        "realistic",
        emulator={
            "stale_reads": {
                "probability": 0.5,
                "window": {"median": 20, "p99": 40, "max": 60},
                "listing_flicker_probability": 0.4,
            }
        },
    )
    cluster.demand(40)
    cluster.run(_all_running(cluster, 40), max_ticks=200)
    for _ in range(30):  # steady state under a flickering, stale listing
        report = cluster.tick()
        assert report.counts.get("ready") == 40
    assert cluster.launches() == 1
    assert all(
        entry.status is not Status.LOST
        for r in cluster.autoscaler.records.values()
        for entry in r.history
    )


def test_lost_run_instances_response_is_resolved_by_the_same_client_token(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic")
    # More lost answers than botocore retries: the tick ends without ids.
    cluster.emulator.inject(Fault.LOST_RESPONSE, "RunInstances", count=3)
    cluster.demand(20)
    cluster.tick()
    assert cluster.count(Status.REQUESTED) == 20
    assert len(cluster.truth()) == 20  # EC2 launched them all the same
    cluster.run(_all_running(cluster, 20), max_ticks=100)
    assert len(cluster.truth()) == 20
    assert {i.instance_id for i in cluster.truth()} == cluster.ledger.known_instance_ids()


def test_server_errors_on_every_action_delay_but_do_not_break(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory("realistic", idle_timeout_minutes=0)
    for action in ("RunInstances", "DescribeInstances", "TerminateInstances"):
        cluster.emulator.inject(Fault.SERVER_ERROR, action, count=4)
    cluster.demand(10)
    cluster.run(_all_running(cluster, 10), max_ticks=100)
    cluster.demand(0)
    cluster.run(lambda r: _settled(r) and not cluster.alive(), max_ticks=100)
    assert len(cluster.truth()) == 10
