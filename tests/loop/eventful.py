"""A memory-backend cluster that consumes EC2's events from an in-process queue, on the
cluster's fake clock: the tests put AWS-shaped events on the queue themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.errors import CloudError
from steadyscale.loop.inbox import PolledInbox
from steadyscale.providers.memory.queue import MemoryQueue
from steadyscale.retries.clock import FakeClock
from tests import eventshapes
from tests.cluster import MemoryCluster, make_memory_cluster

EVENTS = {"queue_name": "steadyscale-events", "full_listing_interval_seconds": 300}


def _ignore(exc: CloudError) -> None:
    raise AssertionError(f"the memory queue failed: {exc}")


@dataclass
class EventCluster:
    cluster: MemoryCluster
    queue: MemoryQueue

    def send(self, event: dict[str, Any]) -> None:
        self.queue.send(eventshapes.body(event))

    def node(self, instance_id: str) -> NodeRecord:
        return next(
            r for r in self.cluster.autoscaler.records.values() if r.instance_id == instance_id
        )

    def up(self) -> list[NodeRecord]:
        return [
            r
            for r in self.cluster.autoscaler.records.values()
            if r.status in (Status.RUNNING, Status.READY)
        ]


def event_cluster(
    queue: MemoryQueue | None = None, events: dict[str, Any] | None = None, **config: Any
) -> EventCluster:
    """A cluster reading ``queue`` (a new one by default) with an ``events`` block."""
    queue = queue or MemoryQueue(FakeClock(), visibility_timeout=30)
    inbox = PolledInbox(queue, max_messages=10, on_error=_ignore)
    cluster = make_memory_cluster(inbox=inbox, events={**EVENTS, **(events or {})}, **config)
    queue.clock = cluster.clock
    return EventCluster(cluster, queue)


def spot_types(max_workers: int = 20) -> dict[str, Any]:
    return {
        "spot": {
            "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
            "resources": {"CPU": 2},
            "max_workers": max_workers,
            "market": "spot",
        }
    }
