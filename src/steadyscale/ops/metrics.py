"""Prometheus metrics of one autoscaler, and the HTTP endpoint that serves them.

Each ``Metrics`` owns its own ``CollectorRegistry`` (never prometheus-client's global one),
so several autoscalers in one process, or one per test, never share a series. The loop
reports into it; providers report their API calls through ``Metrics.api_call`` (an
``ApiObserver``). ``MetricsServer`` serves ``/metrics`` and ``/healthz`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from steadyscale.core.feasibility import Infeasible
from steadyscale.core.lifecycle import TERMINAL, NodeRecord, Status
from steadyscale.errors import SteadyscaleError
from steadyscale.ops.gauges import CostGauge, DemandGauges, LeaderGauges
from steadyscale.ops.serving import ServerThread
from steadyscale.providers.protocol import ApiCall
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.metrics")

# Launch -> visible/running takes seconds to minutes on EC2; ticks take milliseconds to
# the tick budget.
LAG_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_GAUGED = tuple(s for s in Status if s not in TERMINAL)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Metrics:
    """Every series steadyscale exports, on a registry of its own."""

    def __init__(
        self,
        clock: Clock,
        *,
        stale_after_seconds: float = 15.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.clock = clock
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # /healthz turns unhealthy when no tick completed for this long.
        self.stale_after_seconds = stale_after_seconds
        self.started_at = clock.now()
        self.last_tick_at: float | None = None
        self._gauged_types: set[str] = set()  # every node type the instances gauge has shown
        self._cloud_series(self.registry)
        self._node_series(self.registry)
        self._tick_series(self.registry)
        self.demand = DemandGauges(self.registry)
        self.cost = CostGauge(self.registry)
        self.leader = LeaderGauges(self.registry)

    def _cloud_series(self, r: CollectorRegistry) -> None:
        """EC2 as the provider saw it: calls, errors, retries, lookups, lags."""
        self.api_calls = Counter(
            "steadyscale_api_calls", "EC2 API calls by action.", ["action"], registry=r
        )
        self.api_errors = Counter(
            "steadyscale_api_errors",
            "EC2 API calls that failed after botocore's retries, by action and error code.",
            ["action", "code"],
            registry=r,
        )
        self.api_retries = Counter(
            "steadyscale_api_retries",
            "Attempts botocore retried, by action and the error code that caused the retry.",
            ["action", "code"],
            registry=r,
        )
        self.lookups_not_visible = Counter(
            "steadyscale_lookups_not_visible",
            "Lookups of a launched instance that found nothing yet (EC2's eventual consistency).",
            registry=r,
        )
        self.lookups_found_late = Counter(
            "steadyscale_lookups_found_late",
            "Instances a lookup did not find at first and a later one found.",
            registry=r,
        )
        self.launch_to_visible = Histogram(
            "steadyscale_launch_to_visible_seconds",
            "From the RunInstances answer to the first time EC2 showed the instance.",
            ["node_type"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.launch_to_running = Histogram(
            "steadyscale_launch_to_running_seconds",
            "From the RunInstances answer to EC2 showing the instance running.",
            ["node_type"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.running_to_ready = Histogram(
            "steadyscale_running_to_ready_seconds",
            "From running to passing the node type's health check.",
            ["node_type"],
            buckets=LAG_BUCKETS,
            registry=r,
        )

    def _node_series(self, r: CollectorRegistry) -> None:
        """The nodes: by status, launched, probed, replaced."""
        self.instances = Gauge(
            "steadyscale_instances",
            "Nodes by lifecycle status and node type (terminal statuses excluded).",
            ["node_type", "status"],
            registry=r,
        )
        self.launched = Counter(
            "steadyscale_nodes_launched",
            "Nodes EC2 launched for us (ids known).",
            ["node_type"],
            registry=r,
        )
        self.health_checks = Counter(
            "steadyscale_health_checks",
            "Node health probes by result.",
            ["node_type", "result"],
            registry=r,
        )
        self.unhealthy_replaced = Counter(
            "steadyscale_nodes_unhealthy",
            "Nodes terminated for failing their health "
            "check (and replaced when demand needs them).",
            ["node_type"],
            registry=r,
        )
        self.drain_hooks = Counter(
            "steadyscale_drain_hooks",
            "Drain hook calls by outcome (succeeded, failed, timed_out).",
            ["node_type", "outcome"],
            registry=r,
        )
        self.unknown_instances = Gauge(
            "steadyscale_unknown_instances",
            "Cluster instances the ledger cannot explain, left alone (never terminated), by "
            "reason: other_ledger, no_ledger_id, unknown_request.",
            ["reason"],
            registry=r,
        )

    def _tick_series(self, r: CollectorRegistry) -> None:
        """The loop: ticks, their errors and timing."""
        self.tick_duration = Histogram(
            "steadyscale_tick_duration_seconds",
            "Duration of one observe-decide-act tick.",
            buckets=TICK_BUCKETS,
            registry=r,
        )
        self.ticks = Counter("steadyscale_ticks", "Ticks completed.", registry=r)
        self.tick_errors = Counter(
            "steadyscale_tick_errors",
            "Errors met by ticks (each retried on the next tick).",
            registry=r,
        )
        self.last_tick = Gauge(
            "steadyscale_last_tick_timestamp_seconds",
            "When the last tick completed (clock seconds).",
            registry=r,
        )
        self.last_successful_tick = Gauge(
            "steadyscale_last_successful_tick_timestamp_seconds",
            "When the last tick without any error completed (clock seconds).",
            registry=r,
        )

    # ------------------------------------------------------------------ reporting

    def api_call(self, call: ApiCall) -> None:
        """An ``ApiObserver``: one API call as a provider saw it."""
        self.api_calls.labels(call.action).inc()
        for code in call.retried:
            self.api_retries.labels(call.action, code).inc()
        if call.error is not None:
            self.api_errors.labels(call.action, call.error).inc()

    def nodes(self, records: Iterable[NodeRecord], node_types: Iterable[str]) -> None:
        """Set the instances gauge from the records: one pass, zeros kept for known types
        and for types gauged before (a renamed or removed type's last count never lingers)."""
        self._gauged_types.update(node_types)
        records = list(records)
        self.cost.set(records, self._gauged_types)
        counts: dict[tuple[str, Status], int] = {
            (name, status): 0 for name in self._gauged_types for status in _GAUGED
        }
        for record in records:
            if record.status not in TERMINAL:
                key = (record.node_type, record.status)
                counts[key] = counts.get(key, 0) + 1
        self._gauged_types.update(name for name, _ in counts)
        for (node_type, status), count in counts.items():
            self.instances.labels(node_type, status.value).set(count)

    def tick(
        self,
        *,
        duration: float,
        errors: int,
        demanded: int,
        unmet: int,
        infeasible: int,
        infeasible_demand: Sequence[Infeasible] = (),
        crashed: bool = False,
    ) -> None:
        """A tick ended. A crashed one (cut short by an unexpected exception) counts its
        error but is no completed tick: /healthz goes stale if every tick crashes."""
        now = self.clock.now()
        self.tick_duration.observe(duration)
        if errors:
            self.tick_errors.inc(errors)
        if crashed:
            return
        self.ticks.inc()
        self.last_tick_at = now
        self.last_tick.set(now)
        if not errors:
            self.last_successful_tick.set(now)
        self.demand.set(
            demanded=demanded, unmet=unmet, infeasible=infeasible, explained=infeasible_demand
        )

    def first_seen(self, record: NodeRecord, now: float) -> None:
        """EC2 shows a node for the first time."""
        if record.launched_at is not None:
            self.launch_to_visible.labels(record.node_type).observe(now - record.launched_at)

    def moved(self, record: NodeRecord, status: Status, now: float) -> None:
        """Observe the lags a status change completes."""
        if status is Status.RUNNING and record.launched_at is not None:
            self.launch_to_running.labels(record.node_type).observe(now - record.launched_at)
        if status is Status.READY and record.running_at is not None:
            self.running_to_ready.labels(record.node_type).observe(now - record.running_at)

    def lookups(self, *, not_visible: int, found_late: int) -> None:
        if not_visible:
            self.lookups_not_visible.inc(not_visible)
        if found_late:
            self.lookups_found_late.inc(found_late)

    def standing_by(self) -> None:
        """A follower replica's loop is alive: /healthz stays 200 while it waits to lead."""
        self.last_tick_at = self.clock.now()

    # ------------------------------------------------------------------ health

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details): healthy while a tick completed within ``stale_after_seconds``
        (or, before the first tick, while the process is younger than that)."""
        now = self.clock.now()
        since = self.last_tick_at if self.last_tick_at is not None else self.started_at
        age = now - since
        healthy = age <= self.stale_after_seconds
        return healthy, {
            "ok": healthy,
            "seconds_since_last_tick": None if self.last_tick_at is None else round(age, 3),
            "stale_after_seconds": self.stale_after_seconds,
        }

    def wsgi_app(self) -> WsgiApp:
        """``/metrics`` (Prometheus text format) and ``/healthz`` (200 or 503, JSON)."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "/")
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                healthy, details = self.health()
                return _json(
                    start_response, "200 OK" if healthy else "503 Service Unavailable", details
                )
            return _json(
                start_response, "404 Not Found", {"error": "not found; try /metrics or /healthz"}
            )

        return app


def _json(
    start_response: Callable[..., Any], status: str, payload: Mapping[str, Any]
) -> list[bytes]:
    body = json.dumps(payload).encode("utf-8")
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class MetricsServer:
    """Serves a ``Metrics``' WSGI app in a background thread. Port 0 picks a free port."""

    def __init__(self, metrics: Metrics, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.metrics = metrics
        self.host = host
        self._requested_port = port
        self._serving: ServerThread | None = None
        self._port = 0

    @property
    def port(self) -> int:
        if self._serving is None:
            raise RuntimeError("the metrics server is not running")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> MetricsServer:
        if self._serving is not None:
            return self
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = make_server(
                self.host,
                self._requested_port,
                self.metrics.wsgi_app(),
                server_class=server_class,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            raise SteadyscaleError(
                f"metrics: cannot listen on {self.host}:{self._requested_port} "
                f"({exc.strerror or exc}); set metrics.port (0 picks a free port) or "
                "--metrics off"
            ) from None
        self._port = int(server.server_address[1])
        self._serving = ServerThread(server, name="steadyscale-metrics", poll_interval=0.2)
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Metrics", "MetricsServer"]
