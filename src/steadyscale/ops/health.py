"""Node health checks: probes that make a running node READY, or get it replaced.

Probes run on a small thread pool and a tick only collects the answers that have come in
and starts the probes that are due, so a slow or silent node never blocks a tick. A probe
goes to the node's private IP (TCP connect, or HTTP GET), or, with the emulator, to the
emulator's control API on 127.0.0.1, never to an emulated instance's made-up address.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from steadyscale.config import ClusterConfig, HealthCheck, NodeType
from steadyscale.core.health import HealthVerdict
from steadyscale.core.lifecycle import UP, NodeRecord
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.health")

MAX_CONCURRENT_PROBES = 32
# A probe still running this long after its timeout_seconds is abandoned as failed: a
# prober that overstays its timeout must not keep its node unprobed (never replaced) nor
# hold a slot of MAX_CONCURRENT_PROBES for ever.
PROBE_OVERDUE_SECONDS = 1.0
_STATUS_LINE_MAX = 1024
# Probes never go through an HTTP proxy from the environment: they are meant for the node
# (or the local emulator) itself.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class ProbeTarget:
    node_id: str
    instance_id: str
    private_ip: str | None
    check: HealthCheck


class Prober(Protocol):
    """Probes one node, blocking at most ``check.timeout_seconds``; True when healthy."""

    def __call__(self, target: ProbeTarget, /) -> bool: ...


def http_probe(
    host: str, port: int, path: str, timeout: float, *, now: Callable[[], float] = time.monotonic
) -> bool:
    """GET ``path``: True when the status line says 2xx or 3xx. The whole probe, connect
    included, ends within ``timeout``: a socket timeout bounds each wait only (a server
    sending a byte a second would hold urllib for ever), so each wait gets the time left,
    and only the status line is read."""
    deadline = now() + timeout
    host_header = f"[{host}]" if ":" in host else host
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {host_header}:{port}\r\n"
        "User-Agent: steadyscale-probe\r\nConnection: close\r\n\r\n"
    )
    answer = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(request.encode("ascii"))
            while b"\n" not in answer and len(answer) < _STATUS_LINE_MAX:
                left = deadline - now()
                if left <= 0:
                    return False
                sock.settimeout(left)
                chunk = sock.recv(_STATUS_LINE_MAX)
                if not chunk:
                    break
                answer += chunk
    except (OSError, UnicodeError):
        return False
    parts = answer.split(b"\n", 1)[0].split()
    return (
        len(parts) >= 2
        and parts[0].startswith(b"HTTP/")
        and parts[1].isdigit()
        and 200 <= int(parts[1]) < 400
    )


def direct_probe(target: ProbeTarget) -> bool:
    """TCP connect to (or HTTP GET from) the node's private IP and port."""
    check = target.check
    if not target.private_ip:
        return False
    if check.path is not None:
        return http_probe(target.private_ip, check.port, check.path, check.timeout_seconds)
    try:
        with socket.create_connection(
            (target.private_ip, check.port), timeout=check.timeout_seconds
        ):
            return True
    except OSError:
        return False


class EndpointProber:
    """Asks the emulator behind ``endpoint_url`` what a probe of the instance would find."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1") -> None:
        self.base = endpoint_url.rstrip("/") + "/_steadyscale/node-health"
        self.region = region

    def __call__(self, target: ProbeTarget) -> bool:
        query = urllib.parse.urlencode(
            {
                "instance_id": target.instance_id,
                "region": self.region,
                "port": target.check.port,
                "path": target.check.path or "",
            }
        )
        try:
            with _OPENER.open(
                f"{self.base}?{query}", timeout=target.check.timeout_seconds
            ) as answer:
                return bool(json.loads(answer.read()).get("healthy"))
        except (OSError, ValueError):
            return False


def _no_endpoint(target: ProbeTarget) -> bool:
    return False  # probes must go through an endpoint and there is none: never the node


def prober_for(
    config: ClusterConfig,
    endpoint_url: str | None,
    *,
    in_process: Callable[[str], bool] | None = None,
) -> Prober:
    """Probes go to the nodes, or (with the emulator) to the EC2 endpoint's control API,
    or (with the memory backend) to its model, ``in_process``: instance id -> healthy."""
    if not config.provider.probes_via_endpoint:
        return direct_probe
    if in_process is not None:
        return lambda target: in_process(target.instance_id)
    if endpoint_url:
        return EndpointProber(endpoint_url, config.provider.region)
    return _no_endpoint


@dataclass
class _NodeState:
    last_probe_at: float | None = None
    in_flight: Future[bool] | None = None
    counts: bool = False  # the probe in flight started after the grace period
    timeout: float = 0.0  # the probe in flight's timeout_seconds
    passed: bool = False
    failures: int = 0
    probes: int = 0

    def due(self, now: float, interval: float) -> bool:
        """No probe in flight and none within the check's interval."""
        return self.in_flight is None and (
            self.last_probe_at is None or now - self.last_probe_at >= interval
        )

    def count(self, passed: bool) -> None:
        self.probes += 1
        if passed:
            self.passed, self.failures = True, 0
            return
        self.passed = False
        if self.counts:
            self.failures += 1

    def verdict(self, failure_threshold: int) -> HealthVerdict:
        return HealthVerdict(
            passed=self.passed,
            failures=self.failures,
            failing=self.failures >= failure_threshold,
            probes=self.probes,
        )


class HealthChecker:
    """Per-node probe state across ticks. ``poll`` never waits for a probe."""

    def __init__(
        self,
        prober: Prober,
        clock: Clock,
        *,
        max_concurrency: int = MAX_CONCURRENT_PROBES,
        on_result: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.prober = prober
        self.clock = clock
        self.max_concurrency = max_concurrency
        self.on_result = on_result  # (node type, passed), e.g. for metrics
        self._nodes: dict[str, _NodeState] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def poll(
        self, records: Iterable[NodeRecord], node_types: Mapping[str, NodeType]
    ) -> dict[str, HealthVerdict]:
        """Collect finished probes, start due ones, and say where each probed node stands."""
        now = self.clock.now()
        verdicts: dict[str, HealthVerdict] = {}
        live: set[str] = set()
        in_flight = sum(1 for s in self._nodes.values() if s.in_flight is not None)
        for record in records:
            node_type = node_types.get(record.node_type)
            check = node_type.health_check if node_type is not None else None
            if check is None or record.status not in UP or record.instance_id is None:
                continue
            live.add(record.node_id)
            state = self._nodes.setdefault(record.node_id, _NodeState())
            if self._collect(record, state, now):
                in_flight -= 1
            if in_flight < self.max_concurrency and state.due(now, check.interval_seconds):
                self._start(record, record.instance_id, state, check, now)
                in_flight += 1
            verdicts[record.node_id] = state.verdict(check.failure_threshold)
        for gone in set(self._nodes) - live:
            del self._nodes[gone]
        return verdicts

    def _collect(self, record: NodeRecord, state: _NodeState, now: float) -> bool:
        """Take in the answer of the node's probe in flight if it came, or count it failed
        if it overstayed its timeout; True when that freed a slot."""
        future = state.in_flight
        if future is None:
            return False
        overdue = (
            not future.done()
            and state.last_probe_at is not None
            and now - state.last_probe_at > state.timeout + PROBE_OVERDUE_SECONDS
        )
        if not (future.done() or overdue):
            return False
        state.in_flight = None
        if overdue:
            future.cancel()  # only if it never started; else its answer is dropped
            log.info(
                "health probe of %s (%s) did not finish within %gs: failed",
                record.node_id,
                record.instance_id,
                state.timeout,
            )
        passed = False if overdue else _result(future)
        state.count(passed)
        if self.on_result is not None:
            self.on_result(record.node_type, passed)
        return True

    def _start(
        self,
        record: NodeRecord,
        instance_id: str,
        state: _NodeState,
        check: HealthCheck,
        now: float,
    ) -> None:
        booted = record.running_at if record.running_at is not None else now
        state.last_probe_at = now
        state.timeout = check.timeout_seconds
        # Failures during the boot-time grace period do not count toward replacing it.
        state.counts = now - booted >= check.grace_seconds
        state.in_flight = self._submit(
            ProbeTarget(
                node_id=record.node_id,
                instance_id=instance_id,
                private_ip=record.private_ip,
                check=check,
            )
        )

    def _submit(self, target: ProbeTarget) -> Future[bool]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix="steadyscale-probe"
                )
            return self._pool.submit(self.prober, target)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every probe in flight has finished (they are bounded by their own
        timeouts); True when none is left. For shutdown and tests, never in a tick."""
        futures = [s.in_flight for s in self._nodes.values() if s.in_flight is not None]
        return not wait(futures, timeout=timeout).not_done

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _result(future: Future[bool]) -> bool:
    try:
        return bool(future.result())
    except Exception as exc:  # a prober that raises is a failed probe, not a failed tick
        log.debug("health probe raised: %s", exc)
        return False


__all__ = [
    "EndpointProber",
    "HealthChecker",
    "HealthVerdict",
    "ProbeTarget",
    "Prober",
    "direct_probe",
]
