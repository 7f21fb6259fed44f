"""Node health checks: a probe gates READY, a node that keeps failing is replaced, probes
never block a tick, and with the emulator they go to the emulator, never to a node."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from steadyscale.app.runtime import endpoint_prober
from steadyscale.config import HealthCheck, NodeType
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.emulator import Emulator
from steadyscale.errors import ConfigError
from steadyscale.ops.health import (
    EndpointProber,
    HealthChecker,
    ProbeTarget,
    direct_probe,
    http_probe,
    prober_for,
)
from steadyscale.retries.clock import FakeClock
from tests.cluster import Cluster, Harness, cluster_config, make_cluster, make_memory_cluster

CHECK = {
    "port": 8080,
    "path": "/ready",
    "interval_seconds": 5,
    "timeout_seconds": 2,
    "failure_threshold": 2,
    "grace_seconds": 10,
}
CPU = {
    "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
    "resources": {"CPU": 2},
    "max_workers": 10,
}


def _checked_cluster(**check: Any) -> Cluster:
    return make_cluster(
        "none", available_node_types={"cpu": {**CPU, "health_check": {**CHECK, **check}}}
    )


def _drain(cluster: Harness) -> None:
    # Probes run beside the loop; waiting for them between ticks makes a run repeatable.
    assert cluster.autoscaler.health.drain(timeout=10)


def _statuses(cluster: Harness, node_id: str) -> list[Status]:
    return [h.status for h in cluster.autoscaler.records[node_id].history]


def test_a_node_is_ready_only_once_its_health_check_passes() -> None:
    cluster = _checked_cluster()
    cluster.demand(2)
    cluster.tick()
    ids = [r.instance_id for r in cluster.autoscaler.records.values()]
    assert len(ids) == 2 and all(ids)
    # The service on the nodes is not up yet: running, but not ready.
    cluster.emulator.set_node_health([i for i in ids if i], False)
    for _ in range(3):
        cluster.tick()
        _drain(cluster)
    assert cluster.count(Status.RUNNING) == 2 and cluster.count(Status.READY) == 0
    assert not cluster.reports[-1].capacity_met
    cluster.emulator.set_node_health([i for i in ids if i], True)
    cluster.run(lambda r: r.capacity_met, max_ticks=5, each=_drain)
    assert cluster.count(Status.READY) == 2
    for record in cluster.autoscaler.records.values():
        assert record.history[-1].reason == "passed its health check (GET :8080/ready)"
    registry = cluster.autoscaler.metrics.registry
    assert (
        registry.get_sample_value(
            "steadyscale_health_checks_total", {"node_type": "cpu", "result": "fail"}
        )
        or 0
    ) >= 2
    assert (
        registry.get_sample_value(
            "steadyscale_running_to_ready_seconds_count", {"node_type": "cpu"}
        )
        == 2
    )


def test_a_node_that_keeps_failing_is_replaced() -> None:
    cluster = _checked_cluster()
    cluster.demand(2)
    cluster.tick()
    bad_node, bad_id = next((r.node_id, r.instance_id) for r in cluster.autoscaler.records.values())
    assert bad_id is not None
    cluster.emulator.set_node_health([bad_id], False)
    cluster.run(
        lambda r: r.capacity_met and cluster.count(Status.TERMINATED) == 1,
        max_ticks=30,
        each=_drain,
    )
    bad = cluster.autoscaler.records[bad_node]
    assert Status.READY not in _statuses(cluster, bad_node)
    assert bad.status is Status.TERMINATED
    reason = next(h.reason for h in bad.history if h.status is Status.TERMINATING)
    assert reason == "failed 2 health checks in a row (GET :8080/ready); replacing it"
    # Failures within the grace period did not count: it went after grace + threshold.
    terminated_at = next(h.at for h in bad.history if h.status is Status.TERMINATING)
    assert bad.running_at is not None and terminated_at - bad.running_at >= 10 + 5
    assert cluster.count(Status.READY) == 2 and len(cluster.autoscaler.records) == 3
    assert (
        cluster.autoscaler.metrics.registry.get_sample_value(
            "steadyscale_nodes_unhealthy_total", {"node_type": "cpu"}
        )
        == 1
    )
    assert bad_id not in [i.instance_id for i in cluster.alive()]


def test_a_ready_node_that_starts_failing_is_replaced() -> None:
    cluster = _checked_cluster()
    cluster.demand(1)
    cluster.run(lambda r: r.capacity_met, max_ticks=10, each=_drain)
    (node,) = cluster.autoscaler.records.values()
    assert node.instance_id is not None
    cluster.clock.advance(30)  # past the grace period
    cluster.emulator.set_node_health([node.instance_id], False)
    cluster.run(
        lambda r: r.capacity_met and node.status is Status.TERMINATED, max_ticks=20, each=_drain
    )
    assert _statuses(cluster, node.node_id)[-3:] == [
        Status.READY,
        Status.TERMINATING,
        Status.TERMINATED,
    ]
    assert cluster.count(Status.READY) == 1


def test_on_the_memory_backend_probes_ask_the_model_and_gate_ready() -> None:
    cluster = make_memory_cluster(
        "none", available_node_types={"cpu": {**CPU, "health_check": CHECK}}
    )
    cluster.demand(2)
    cluster.tick()
    ids = [r.instance_id for r in cluster.autoscaler.records.values() if r.instance_id]
    assert len(ids) == 2
    cluster.memory.set_node_health(ids[:1], False)
    cluster.run(
        lambda r: r.capacity_met and cluster.count(Status.TERMINATED) == 1,
        max_ticks=30,
        each=_drain,
    )
    failed = next(r for r in cluster.autoscaler.records.values() if r.instance_id == ids[0])
    assert Status.READY not in _statuses(cluster, failed.node_id)
    assert cluster.count(Status.READY) == 2


def test_direct_probes_are_refused_for_emulated_instances() -> None:
    for kind in ("emulator", "memory"):
        with pytest.raises(ConfigError, match="health_probes: direct is not allowed"):
            cluster_config(provider={"type": kind, "health_probes": "direct"})
        assert cluster_config(provider={"type": kind}).provider.probes_via_endpoint


def test_the_emulator_answers_probes_as_a_test_sets_them(ec2_emulator: Emulator) -> None:
    ec2 = ec2_emulator.client()
    iid = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    check = HealthCheck(port=22)
    probe = EndpointProber(ec2_emulator.endpoint_url)

    def target(instance_id: str) -> ProbeTarget:
        return ProbeTarget(
            node_id="n", instance_id=instance_id, private_ip="10.255.0.1", check=check
        )

    assert probe(target(iid))  # running: healthy by default
    assert not probe(target("i-00000000000000000"))
    ec2_emulator.set_node_health([iid], False)
    assert not probe(target(iid))
    body = json.dumps({"instance_ids": [iid], "healthy": None}).encode()
    request = urllib.request.Request(
        f"{ec2_emulator.endpoint_url}/_steadyscale/node-health", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.loads(answer.read())["healthy"] is None
    assert probe(target(iid))
    ec2.terminate_instances(InstanceIds=[iid])
    assert not probe(target(iid))
    bad = urllib.request.Request(
        f"{ec2_emulator.endpoint_url}/_steadyscale/node-health",
        data=b'{"instance_ids": ["x"], "healthy": "yes"}',
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(bad, timeout=5)
    assert error.value.code == 400


def test_probes_never_block_a_poll_and_are_bounded() -> None:
    release = threading.Event()
    started: list[str] = []

    def slow(target: ProbeTarget) -> bool:
        started.append(target.node_id)
        return release.wait(timeout=10)

    clock = FakeClock()
    checker = HealthChecker(slow, clock, max_concurrency=3)
    node_type = NodeType.model_validate({**CPU, "health_check": CHECK})
    records = [
        NodeRecord(
            node_id=f"n-{i}",
            node_type="cpu",
            status=Status.RUNNING,
            created_at=0,
            instance_id=f"i-{i}",
            private_ip="10.0.0.1",
            running_at=0,
        )
        for i in range(5)
    ]
    verdicts = checker.poll(records, {"cpu": node_type})  # returns at once
    assert all(not v.passed and v.probes == 0 for v in verdicts.values())
    clock.advance(3)  # still within the probes' timeout (and margin): not abandoned
    checker.poll(records, {"cpu": node_type})
    release.set()
    assert checker.drain(timeout=10)
    assert len(started) == 3  # at most max_concurrency in flight, none started twice
    verdicts = checker.poll(records, {"cpu": node_type})
    assert sum(v.passed for v in verdicts.values()) == 3
    checker.close()


def test_a_probe_that_never_finishes_counts_as_failed_and_frees_its_slot() -> None:
    release = threading.Event()
    started: list[str] = []

    def hangs(target: ProbeTarget) -> bool:
        started.append(target.node_id)
        release.wait(timeout=30)  # a prober that ignores its timeout
        return True

    clock = FakeClock()
    check = {
        "port": 8080,
        "interval_seconds": 10,
        "timeout_seconds": 2,
        "failure_threshold": 2,
        "grace_seconds": 0,
    }
    node_type = NodeType.model_validate({**CPU, "health_check": check})
    record = NodeRecord(
        node_id="n-1",
        node_type="cpu",
        status=Status.RUNNING,
        created_at=0,
        instance_id="i-1",
        private_ip="10.0.0.1",
        running_at=0,
    )
    checker = HealthChecker(hangs, clock, max_concurrency=1)
    try:
        checker.poll([record], {"cpu": node_type})
        clock.advance(2)  # within its timeout (and margin): still waited for
        assert checker.poll([record], {"cpu": node_type})["n-1"].probes == 0
        verdicts = []
        for _ in range(2):
            clock.advance(10)
            verdicts.append(checker.poll([record], {"cpu": node_type})["n-1"])
        assert [(v.probes, v.failures) for v in verdicts] == [(1, 1), (2, 2)]
        assert verdicts[-1].failing  # so the node gets replaced
    finally:
        release.set()
        checker.close()


class _SlowHeaders(BaseHTTPRequestHandler):
    """Answers 200 at once, then holds back the end of its headers until told."""

    release = threading.Event()

    def do_GET(self) -> None:
        # /partial: not even the status line ends.
        self.wfile.write(
            b"HTTP/1.0 2" if self.path == "/partial" else b"HTTP/1.0 200 OK\r\nX-Slow: 1\r\n"
        )
        self.wfile.flush()
        self.release.wait(timeout=30)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_http_probe_reads_the_status_line_within_its_timeout() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHeaders)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = int(server.server_address[1])
    try:
        # The status line has come: the probe passes without waiting for the headers.
        assert http_probe("127.0.0.1", port, "/ready", 5)
        # A status line that never completes: the deadline (by the injected time, which
        # passes it after the first read) ends the probe, not a per-read socket timeout.
        times = iter([0.0, 10.0, 40.0])
        assert not http_probe("127.0.0.1", port, "/partial", 30, now=lambda: next(times))
    finally:
        _SlowHeaders.release.set()
        server.shutdown()
        server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 500)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_direct_probes_connect_over_tcp_and_http(local_service: int) -> None:
    def target(**check: Any) -> ProbeTarget:
        return ProbeTarget(
            node_id="n",
            instance_id="i-1",
            private_ip="127.0.0.1",
            check=HealthCheck(timeout_seconds=2, **check),
        )

    assert direct_probe(target(port=local_service))
    assert direct_probe(target(port=local_service, path="/ready"))
    assert not direct_probe(target(port=local_service, path="/broken"))
    free = socket_port_nobody_listens_on()
    assert not direct_probe(target(port=free))
    assert not direct_probe(
        ProbeTarget(
            node_id="n", instance_id="i-1", private_ip=None, check=HealthCheck(port=local_service)
        )
    )


def socket_port_nobody_listens_on() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"port": 80, "timeout_seconds": 20, "interval_seconds": 10}, "must not exceed"),
        ({"port": 80, "path": "ready"}, "starts with '/'"),
        ({"port": 0}, "health_check.port"),
    ],
)
def test_a_bad_health_check_names_the_key(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        cluster_config(available_node_types={"cpu": {**CPU, "health_check": check}})
    assert "available_node_types.cpu.health_check" in str(error.value)


def test_probes_via_the_endpoint_need_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="health_probes: endpoint needs endpoint_url"):
        cluster_config(provider={"type": "aws", "health_probes": "endpoint"})
    assert cluster_config().provider.probes_via_endpoint
    assert not cluster_config(provider={"type": "aws"}).provider.probes_via_endpoint
    assert cluster_config(
        provider={"type": "aws", "endpoint_url": "http://127.0.0.1:1", "health_probes": "endpoint"}
    ).provider.probes_via_endpoint


def test_probes_default_to_the_endpoint_when_there_is_an_endpoint_url() -> None:
    # The user guide runs type aws against a shared emulator: its 10.x addresses are
    # made up, so probes go to its control API unless direct is asked for.
    shared = {"type": "aws", "endpoint_url": "http://127.0.0.1:4566"}
    config = cluster_config(provider=shared)
    assert config.provider.probes_via_endpoint
    assert isinstance(prober_for(config, "http://127.0.0.1:4566"), EndpointProber)
    explicit = cluster_config(provider={**shared, "health_probes": "direct"})
    assert not explicit.provider.probes_via_endpoint


def test_probes_never_go_to_an_emulated_node_whoever_builds_the_autoscaler() -> None:
    emulated = cluster_config()
    assert isinstance(prober_for(emulated, "http://127.0.0.1:4566"), EndpointProber)
    # Through an endpoint but none known: every probe fails, none reaches a node.
    no_endpoint = prober_for(emulated, None)
    assert no_endpoint is not direct_probe
    assert not no_endpoint(
        ProbeTarget(
            node_id="n", instance_id="i-1", private_ip="127.0.0.1", check=HealthCheck(port=1)
        )
    )
    assert prober_for(cluster_config(provider={"type": "aws"}), None) is direct_probe
    cluster = make_cluster("none")
    # The runtime's prober for an autoscaler on the emulator's EC2 endpoint.
    default = endpoint_prober(cluster.config, cluster.provider.endpoint_url)
    assert isinstance(default, EndpointProber)
    assert default.base.startswith(cluster.emulator.endpoint_url)
