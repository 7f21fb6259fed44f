"""How the loop is wired: collaborators come from the caller, crash points through a hook,
and the loop imports no test tooling, emulator or concrete provider."""

from __future__ import annotations

import ast
from pathlib import Path

import steadyscale.loop
from steadyscale.core.lifecycle import Status
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.loop.hooks import CRASH_POINTS
from steadyscale.ops.health import ProbeTarget
from steadyscale.testing.crashpoints import POINTS
from tests.cluster import make_memory_cluster

_FORBIDDEN = (
    "steadyscale.testing",
    "steadyscale.emulator",
    "steadyscale.ec2model",
    "steadyscale.providers.aws",
    "steadyscale.providers.memory",
    "steadyscale.app",
)


def test_the_loop_imports_no_test_tooling_emulator_or_concrete_provider() -> None:
    for module in Path(steadyscale.loop.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(_FORBIDDEN), f"{module.name} imports {name}"


def test_the_crash_hook_is_called_at_each_named_point_in_order() -> None:
    assert POINTS == CRASH_POINTS  # the chaos harness arms exactly the loop's points
    cluster = make_memory_cluster("none", idle_timeout_minutes=0)
    points: list[str] = []
    autoscaler = Autoscaler(
        cluster.config,
        cluster.memory,
        cluster.ledger,
        cluster.clock,
        metrics=cluster.autoscaler.metrics,
        health=cluster.autoscaler.health,
        crash=points.append,
    )
    cluster.autoscaler = autoscaler
    cluster.demand(2)
    cluster.run(lambda r: cluster.count(Status.READY) == 2, max_ticks=10)
    assert points == ["intent_written", "launch_sent", "launch_recorded"]
    cluster.demand(0)
    cluster.run(lambda r: cluster.count(Status.TERMINATED) == 2, max_ticks=10)
    assert points[3:5] == ["terminate_written", "terminate_sent"]


def test_the_memory_harness_probes_the_memory_model() -> None:
    cluster = make_memory_cluster(
        "none",
        available_node_types={
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "health_check": {"port": 8080},
            }
        },
    )
    cluster.demand(1)
    cluster.run(lambda r: cluster.count(Status.RUNNING) + cluster.count(Status.READY) == 1)
    [record] = cluster.autoscaler.records.values()
    assert record.instance_id is not None
    check = cluster.config.available_node_types["cpu"].health_check
    assert check is not None
    target = ProbeTarget(
        node_id=record.node_id, instance_id=record.instance_id, private_ip="10.0.0.1", check=check
    )
    prober = cluster.autoscaler.health.prober
    assert prober(target)
    cluster.memory.set_node_health([record.instance_id], False)
    assert not prober(target)
