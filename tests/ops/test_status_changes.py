"""status while a config change retires nodes: rows for node types the config no longer
has (their nodes are never invisible), how many nodes retire and why, and the renames a
daemon has not applied yet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.ops.status import collect_status, render_status
from tests.cluster import Cluster, cluster_config, make_cluster

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "status.schema.json").read_text())
CPU = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
GPU = {"InstanceType": "g4dn.xlarge", "ImageId": "ami-12345678"}


def _types(**types: tuple[dict[str, Any], dict[str, float]]) -> dict[str, Any]:
    return {name: {"node_config": c, "resources": r} for name, (c, r) in types.items()}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Two cpu nodes and one gpu node, ready and demanded."""
    made = make_cluster(
        ledger_path=str(tmp_path / "ledger.db"),
        available_node_types=_types(cpu=(CPU, {"CPU": 2}), gpu=(GPU, {"CPU": 4, "GPU": 1})),
    )
    made.ledger.set_demand(
        [
            DemandItem(bundle={"CPU": 2}, count=2),
            DemandItem(bundle={"CPU": 4, "GPU": 1}, count=1),
        ],
        made.clock.now(),
    )
    made.run(lambda r: r.settled and made.count(Status.READY) == 3, max_ticks=60)
    yield made
    made.ledger.close()
    made.emulator.stop()


def test_a_removed_node_type_keeps_its_row_and_its_demanded_node_is_counted_retiring(
    cluster: Cluster,
) -> None:
    config = cluster_config(available_node_types=_types(cpu=(CPU, {"CPU": 2})))
    old = cluster.autoscaler
    cluster.autoscaler = Autoscaler(  # the daemon restarted without the gpu type
        config, old.provider, cluster.ledger, cluster.clock, metrics=old.metrics, health=old.health
    )
    for _ in range(5):
        cluster.tick()
    assert cluster.count(Status.READY) == 3  # nothing can replace it: it stays

    report = collect_status(config, cluster.ledger, now=cluster.clock.now())
    gpu = report.node_types["gpu"]
    assert (gpu.configured, gpu.instance_type, gpu.counts["ready"], gpu.retiring) == (
        False,
        "g4dn.xlarge",
        1,
        1,
    )
    assert report.node_types["cpu"].retiring == 0
    assert report.totals["ready"] == 3
    assert report.retiring == 1
    assert report.retiring_reasons == {"node type gpu was removed": 1}
    jsonschema.validate(json.loads(report.model_dump_json()), SCHEMA)
    text = render_status(report)
    assert "gpu (removed)" in text
    assert "retiring: 1 node(s), each terminated once ready nodes of a configured type hold " in (
        text.replace("\n", " ")
    )


def test_a_rename_the_daemon_has_not_applied_yet_is_said(cluster: Cluster) -> None:
    renamed = cluster_config(
        available_node_types=_types(cpu2=(CPU, {"CPU": 2}), gpu=(GPU, {"CPU": 4, "GPU": 1}))
    )
    report = collect_status(renamed, cluster.ledger, now=cluster.clock.now())
    assert report.relabel_pending == {"cpu": "cpu2"}
    assert report.retiring == 0
    assert report.node_types["cpu"].configured is False
    assert "re-labelled when the daemon starts with this config: cpu -> cpu2" in render_status(
        report
    )
