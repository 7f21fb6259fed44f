"""The Ray provider with an ``events`` key: a node under a spot interruption warning is
reported terminating at once (Ray replaces it early); without the key nothing changes."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from steadyscale.emulator import build_settings
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.memory.queue import MemoryQueue
from steadyscale.ray import EC2NodeProvider
from steadyscale.retries.clock import FakeClock
from tests import eventshapes as shapes
from tests.ray.test_ray_memory import NODE_CONFIG, QUIET, WORKER


def _provider(
    tmp_path: Path, *, events: bool
) -> tuple[EC2NodeProvider, MemoryProvider, MemoryQueue, FakeClock]:
    clock = FakeClock(1_000_000.0)
    settings = build_settings(profile="none", overrides={**QUIET, "seed": 3})
    cloud = MemoryProvider(cluster_name="c1", clock=clock, settings=settings)
    queue = MemoryQueue(clock)
    config: dict[str, Any] = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "cache_stopped_nodes": False,
        "state_path": str(tmp_path / "ray-state.sqlite"),
    }
    if events:
        config["events"] = {"queue_name": "steadyscale-events"}
    provider = EC2NodeProvider(
        config, "c1", clock=clock, rng=random.Random(3), cloud=cloud, events=queue
    )
    return provider, cloud, queue, clock


def test_a_warned_node_is_reported_terminating_at_once(tmp_path: Path) -> None:
    provider, _, queue, clock = _provider(tmp_path, events=True)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))
    assert sorted(provider.non_terminated_nodes({})) == ids
    queue.send(shapes.body(shapes.interruption_warning(ids[0], clock.now())))
    queue.send(shapes.body(shapes.state_change(ids[1], "running", clock.now())))
    queue.send("not json")
    assert provider.non_terminated_nodes({}) == [ids[1]]
    assert provider.is_terminated(ids[0]) and not provider.is_terminated(ids[1])
    assert len(queue) == 0  # every message read and deleted
    # Long after the deadline the warning is forgotten: EC2's own word rules again.
    clock.advance(120 + 700)
    provider.non_terminated_nodes({})
    assert not provider.is_terminated(ids[0])


def test_without_the_events_key_a_warning_changes_nothing(tmp_path: Path) -> None:
    provider, _, queue, clock = _provider(tmp_path, events=False)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))
    queue.send(shapes.body(shapes.interruption_warning(ids[0], clock.now())))
    assert sorted(provider.non_terminated_nodes({})) == ids
    assert not provider.is_terminated(ids[0])
    assert len(queue) == 1  # nobody reads it
