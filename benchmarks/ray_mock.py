"""Ray's autoscaler on a mock node provider, for ``benchmarks/simulate.py`` (needs ``ray``).

The provider keeps nodes in a dict and launches at once: what is timed is Ray's own
``StandardAutoscaler.update()`` deciding over N workers that are up and busy.
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from ray.autoscaler._private.autoscaler import StandardAutoscaler
from ray.autoscaler._private.load_metrics import LoadMetrics
from ray.autoscaler.node_provider import NodeProvider
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)

WORKER = {"CPU": 2.0}


class BenchNodeProvider(NodeProvider):
    """Nodes in a dict; every node is up the moment it is created."""

    def __init__(self, provider_config: dict[str, Any], cluster_name: str) -> None:
        super().__init__(provider_config, cluster_name)
        self.nodes: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._next = 0

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        with self._lock:
            return [
                n
                for n, tags in self.nodes.items()
                if all(tags.get(k) == v for k, v in tag_filters.items())
            ]

    def is_running(self, node_id: str) -> bool:
        return node_id in self.nodes

    def is_terminated(self, node_id: str) -> bool:
        return node_id not in self.nodes

    def node_tags(self, node_id: str) -> dict[str, str]:
        return self.nodes[node_id]

    def external_ip(self, node_id: str) -> str:
        return self.internal_ip(node_id)

    def internal_ip(self, node_id: str) -> str:
        n = int(node_id.split("-")[1])
        return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"

    def create_node(self, node_config: dict[str, Any], tags: dict[str, str], count: int) -> None:
        with self._lock:
            for _ in range(count):
                self._next += 1
                self.nodes[f"node-{self._next}"] = {**tags, TAG_RAY_NODE_STATUS: STATUS_UP_TO_DATE}

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        with self._lock:
            self.nodes[node_id].update(tags)

    def terminate_node(self, node_id: str) -> None:
        with self._lock:
            self.nodes.pop(node_id, None)


class _NoGcs:
    """Stands in for the GCS client; nothing is drained in this benchmark."""

    def drain_nodes(self, *args: Any, **kwargs: Any) -> list[bytes]:
        return []


def _config(nodes: int) -> dict[str, Any]:
    return {
        "cluster_name": "bench",
        "max_workers": nodes,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "provider": {
            "type": "external",
            "module": "ray_mock.BenchNodeProvider",
            "foreground_node_launch": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "worker_liveness_check": False,
        },
        "auth": {},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"node_config": {}, "resources": {"CPU": 0}, "max_workers": 0},
            "worker": {
                "node_config": {},
                "resources": dict(WORKER),
                "min_workers": 0,
                "max_workers": nodes,
            },
        },
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def time_update(nodes: int, repeats: int) -> dict[str, Any]:
    config = _config(nodes)
    load: Any = LoadMetrics()  # Ray's annotations do not match its use; typed loosely
    autoscaler: Any = StandardAutoscaler(
        lambda: config,
        load,
        _NoGcs(),
        max_launch_batch=nodes,
        max_concurrent_launches=nodes,
        update_interval_s=0,
    )
    provider: BenchNodeProvider = autoscaler.provider
    provider.nodes.clear()  # Ray caches providers by config: start from none
    provider.create_node({}, {TAG_RAY_NODE_KIND: NODE_KIND_HEAD, TAG_RAY_USER_NODE_TYPE: "head"}, 1)
    provider.create_node(
        {}, {TAG_RAY_NODE_KIND: NODE_KIND_WORKER, TAG_RAY_USER_NODE_TYPE: "worker"}, nodes
    )
    for node_id, tags in provider.nodes.items():
        busy = tags[TAG_RAY_NODE_KIND] == NODE_KIND_WORKER
        load.update(
            provider.internal_ip(node_id),
            node_id.encode(),
            dict(WORKER) if busy else {"CPU": 0.0},
            {"CPU": 0.0},
            0.0 if busy else 60.0,
        )
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        autoscaler.update()
        samples.append(time.perf_counter() - started)
    workers = sum(1 for t in provider.nodes.values() if t[TAG_RAY_NODE_KIND] == NODE_KIND_WORKER)
    return {
        "nodes": workers,
        "version": _version(),
        "update_ms": {
            "median": round(statistics.median(samples) * 1000, 2),
            "max": round(max(samples) * 1000, 2),
        },
    }


def _version() -> str:
    import ray  # noqa: PLC0415

    return str(ray.__version__)
