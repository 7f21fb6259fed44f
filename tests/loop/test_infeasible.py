"""Demand no node type can hold is never met: the tick's report, the progress in the ledger,
one warning per change in the log, and the metrics say how much and why."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from steadyscale.core.resources import DemandItem
from tests.cluster import MemoryCluster, make_memory_cluster

CPU_ONLY = {
    "cpu": {
        "node_config": {"InstanceType": "m5.xlarge", "ImageId": "ami-12345678"},
        "resources": {"CPU": 4},
        "max_workers": 10,
    }
}
GPU: dict[str, float] = {"CPU": 4, "GPU": 1}
WHY = "4 x {CPU: 4, GPU: 1}: no node type offers GPU"


def _cluster() -> MemoryCluster:
    return make_memory_cluster("realistic", available_node_types=CPU_ONLY)


def _demand(cluster: MemoryCluster, *items: tuple[Mapping[str, float], int]) -> None:
    cluster.ledger.set_demand(
        [DemandItem(bundle=dict(b), count=n) for b, n in items], cluster.clock.now()
    )


def _gauge(cluster: MemoryCluster, name: str, **labels: str) -> float | None:
    return cluster.autoscaler.metrics.registry.get_sample_value(name, labels)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_demand_no_node_type_can_hold_is_never_met_and_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _cluster()
    _demand(cluster, (GPU, 4))
    with caplog.at_level(logging.INFO, logger="steadyscale"):
        for _ in range(10):
            cluster.tick()
    report = cluster.reports[-1]
    assert report.settled and cluster.launches() == 0
    assert (report.infeasible, report.unmet) == (4, 0)
    assert not any(r.capacity_met or r.feasible_met for r in cluster.reports)
    assert [i.describe() for i in report.infeasible_demand] == [WHY]
    # Said once, when it started, not every tick: in the log and as an event.
    assert _warnings(caplog) == [f"infeasible: 4 bundle(s) no node type can hold: {WHY}"]
    said = [e for r in cluster.reports for e in r.events if e.kind == "infeasible"]
    assert len(said) == 1 and said[0].count == 4
    # The progress ``status`` reads.
    progress = cluster.ledger.progress()
    assert progress is not None
    assert (progress["capacity_met"], progress["feasible_met"], progress["infeasible"]) == (
        False,
        False,
        4,
    )
    assert progress["infeasible_demand"] == [
        {
            "bundle": GPU,
            "count": 4,
            "cause": "not_offered",
            "resource": "GPU",
            "why": "no node type offers GPU",
        }
    ]
    # The metrics: how many, and why.
    assert _gauge(cluster, "steadyscale_demand_infeasible") == 4
    assert (
        _gauge(
            cluster, "steadyscale_demand_infeasible_by_cause", cause="not_offered", resource="GPU"
        )
        == 4
    )


def test_the_rest_of_the_demand_is_placed_but_capacity_is_met_only_once_all_of_it_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _cluster()
    _demand(cluster, ({"CPU": 2}, 4), (GPU, 4))
    with caplog.at_level(logging.INFO, logger="steadyscale"):
        report = cluster.run(lambda r: r.feasible_met, max_ticks=60)
        assert not report.capacity_met and report.infeasible == 4
        assert cluster.launches() >= 1 and len(_warnings(caplog)) == 1
        # The bundles that do not fit go: every bundle fits, and that is said too.
        _demand(cluster, ({"CPU": 2}, 4))
        report = cluster.tick()
    assert report.capacity_met and report.infeasible == 0
    assert [e.message for e in report.events if e.kind == "infeasible"] == [
        "every bundle demanded fits a node type again"
    ]
    assert len(_warnings(caplog)) == 1
    assert _gauge(cluster, "steadyscale_demand_infeasible") == 0
    assert (
        _gauge(
            cluster, "steadyscale_demand_infeasible_by_cause", cause="not_offered", resource="GPU"
        )
        == 0
    )
    progress = cluster.ledger.progress()
    assert progress is not None and progress["capacity_met"] and progress["feasible_met"]


def test_a_change_in_what_does_not_fit_is_said_again(caplog: pytest.LogCaptureFixture) -> None:
    cluster = _cluster()
    _demand(cluster, (GPU, 4))
    with caplog.at_level(logging.INFO, logger="steadyscale"):
        cluster.tick()
        _demand(cluster, (GPU, 4), ({"CPU": 64}, 1))
        cluster.tick()
        cluster.tick()
    assert _warnings(caplog) == [
        f"infeasible: 4 bundle(s) no node type can hold: {WHY}",
        f"infeasible: 5 bundle(s) no node type can hold: {WHY}; "
        "1 x {CPU: 64}: needs CPU 64, the largest node type offers 4 (cpu)",
    ]
    assert (
        _gauge(cluster, "steadyscale_demand_infeasible_by_cause", cause="too_large", resource="CPU")
        == 1
    )
