"""steadyscale.ray.EC2NodeProvider on the in-memory EC2 backend (any ``CloudProvider``
will do): the answers Ray's autoscaler gets while EC2 lags, judged by the backend's ground
truth, on a fake clock."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_CONFIG,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.ec2model.instances import InstanceState
from steadyscale.emulator import build_settings
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import ClientOptions
from steadyscale.ray import EC2NodeProvider
from steadyscale.retries.clock import FakeClock

WORKER = {
    TAG_RAY_NODE_KIND: "worker",
    TAG_RAY_USER_NODE_TYPE: "cpu",
    TAG_RAY_LAUNCH_CONFIG: "hash-1",
    TAG_RAY_NODE_NAME: "ray-c1-worker",
}
NODE_CONFIG = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
QUIET = {
    "errors": {
        "server_error_probability": 0,
        "lost_response_probability": 0,
        "timeout_probability": 0,
    },
    "spot": {"interruption_rate_per_hour": 0},
}
# Every view of a fresh instance lags exactly 30 s.
LAG_30 = {"median": 30, "p99": 30, "max": 30}


def on_memory(
    tmp_path: Path, *, max_attempts: int = 3
) -> tuple[EC2NodeProvider, MemoryProvider, FakeClock]:
    """The provider on a memory backend of the realistic profile, without random faults."""
    clock = FakeClock(1_000.0)
    settings = build_settings(
        profile="realistic", overrides={**QUIET, "seed": 7, "visibility": LAG_30}
    )
    cloud = MemoryProvider(
        cluster_name="c1",
        clock=clock,
        settings=settings,
        options=ClientOptions(max_attempts=max_attempts),
    )
    config: dict[str, Any] = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "cache_stopped_nodes": False,
        "state_path": str(tmp_path / "ray-state.sqlite"),
    }
    provider = EC2NodeProvider(config, "c1", clock=clock, rng=random.Random(7), cloud=cloud)
    return provider, cloud, clock


def truth(cloud: MemoryProvider, ids: list[str]) -> dict[str, InstanceState]:
    return {i.instance_id: i.state for i in cloud.truth(include_gone=True) if i.instance_id in ids}


def truth_tags(cloud: MemoryProvider, instance_id: str) -> dict[str, str]:
    (shown,) = [i for i in cloud.truth() if i.instance_id == instance_id]
    return shown.tags


def test_a_launch_tags_and_termination_on_the_memory_backend(tmp_path: Path) -> None:
    provider, cloud, clock = on_memory(tmp_path)

    created = provider.create_node(NODE_CONFIG, WORKER, 3)

    ids = sorted(created)
    launched = {i.instance_id: i for i in cloud.truth()}
    assert sorted(launched) == ids, "one RunInstances, three instances"
    for node_id in ids:
        tags = launched[node_id].tags
        assert tags[TAG_RAY_CLUSTER_NAME] == "c1" and tags[TAG_CLUSTER] == "c1"
        assert tags["Name"] == "ray-c1-worker" and tags[TAG_RAY_USER_NODE_TYPE] == "cpu"
    # Invisible: EC2 lists none of them, yet Ray sees all three with their tags.
    assert cloud.list_tagged(TAG_RAY_CLUSTER_NAME, "c1") == []
    assert sorted(provider.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"})) == ids
    for node_id in ids:
        assert {k: provider.node_tags(node_id)[k] for k in WORKER} == WORKER
        assert provider.internal_ip(node_id) == launched[node_id].private_ip != ""
        assert provider.is_running(node_id) is False
        assert provider.is_terminated(node_id) is False

    provider.set_node_tags(ids[0], {TAG_RAY_NODE_STATUS: "up-to-date"})

    assert cloud.calls.count("CreateTags", "InvalidInstanceID.NotFound") == 1
    assert TAG_RAY_NODE_STATUS not in truth_tags(cloud, ids[0])
    assert provider.node_tags(ids[0])[TAG_RAY_NODE_STATUS] == "up-to-date"

    # Visible: the listing shows them, the tags reach EC2, the state file lets them go.
    clock.advance(60)
    assert sorted(provider.non_terminated_nodes({})) == ids
    assert truth_tags(cloud, ids[0])[TAG_RAY_NODE_STATUS] == "up-to-date"
    assert provider.state.launches() == []
    clock.advance(120)
    provider.non_terminated_nodes({})
    assert set(truth(cloud, ids).values()) == {InstanceState.RUNNING}
    assert all(provider.is_running(node_id) for node_id in ids)

    provider.terminate_nodes(ids)

    assert provider.non_terminated_nodes({}) == []
    assert all(provider.is_terminated(node_id) for node_id in ids)
    clock.advance(120)
    assert set(truth(cloud, ids).values()) == {InstanceState.TERMINATED}
    assert provider.state.terminations() == []
    assert cloud.calls.count("RunInstances") == 1


def test_nodes_terminated_while_invisible_are_terminated_once_ec2_knows_them(
    tmp_path: Path,
) -> None:
    provider, cloud, clock = on_memory(tmp_path)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))

    provider.terminate_nodes(ids)

    assert provider.non_terminated_nodes({}) == []
    assert cloud.calls.count("TerminateInstances", "InvalidInstanceID.NotFound") >= 1
    assert set(truth(cloud, ids).values()) <= {InstanceState.PENDING, InstanceState.RUNNING}
    assert {t.instance_id for t in provider.state.terminations()} == set(ids)
    clock.advance(60)
    assert provider.non_terminated_nodes({}) == []  # each update sends them again
    clock.advance(120)
    assert set(truth(cloud, ids).values()) == {InstanceState.TERMINATED}
    assert provider.state.terminations() == []


def test_a_launch_whose_answer_was_lost_launches_once_on_the_memory_backend(
    tmp_path: Path,
) -> None:
    provider, cloud, _ = on_memory(tmp_path, max_attempts=1)
    cloud.inject("lost_response", "RunInstances", count=1)

    created = provider.create_node(NODE_CONFIG, WORKER, 4)

    assert sorted(created) == sorted(i.instance_id for i in cloud.truth())
    assert len(created) == 4, "the resend reused the ClientToken"
    assert cloud.calls.count("RunInstances") == 2
    assert provider.state.intents() == []
