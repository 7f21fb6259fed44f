"""Metrics: what the loop and the provider report as an emulator run progresses, and the
/metrics and /healthz endpoints."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.app.cli.common import is_loopback
from steadyscale.app.cli.run import metrics_address
from steadyscale.config import load_config
from steadyscale.core.lifecycle import Status
from steadyscale.emulator import Fault
from steadyscale.errors import SteadyscaleError
from steadyscale.ops.metrics import Metrics, MetricsServer
from steadyscale.retries.clock import FakeClock
from tests.cluster import Cluster, make_cluster

SLOW_VISIBILITY = {
    "visibility": {"median": 12, "p99": 20, "max": 25},
    "boot": {"median": 15, "p99": 25, "max": 30},
}


def _value(cluster: Cluster, name: str, **labels: str) -> float:
    value = cluster.autoscaler.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_follow_a_scale_up_on_the_emulator() -> None:
    cluster = make_cluster("realistic", emulator=SLOW_VISIBILITY)
    cluster.demand(6)
    cluster.tick()
    assert _value(cluster, "steadyscale_nodes_launched_total", node_type="cpu") == 6
    assert _value(cluster, "steadyscale_api_calls_total", action="RunInstances") == 1
    assert _value(cluster, "steadyscale_instances", node_type="cpu", status="launched") == 6
    assert _value(cluster, "steadyscale_launch_to_visible_seconds_count", node_type="cpu") == 0
    assert _value(cluster, "steadyscale_demand_bundles") == 6

    cluster.tick()  # 5 s after launch: EC2 shows none of them yet
    assert _value(cluster, "steadyscale_lookups_not_visible_total") >= 6

    cluster.run(lambda r: r.capacity_met, max_ticks=40)
    assert _value(cluster, "steadyscale_launch_to_visible_seconds_count", node_type="cpu") == 6
    assert _value(cluster, "steadyscale_launch_to_running_seconds_count", node_type="cpu") == 6
    # Every lag observed is at least the 5 s the first lookup came after the launch.
    assert _value(cluster, "steadyscale_launch_to_visible_seconds_sum", node_type="cpu") >= 6 * 5
    assert _value(cluster, "steadyscale_lookups_found_late_total") == 6
    assert _value(cluster, "steadyscale_demand_unmet") == 0
    ticks = len(cluster.reports)
    assert _value(cluster, "steadyscale_ticks_total") == ticks
    assert _value(cluster, "steadyscale_tick_duration_seconds_count") == ticks
    assert _value(cluster, "steadyscale_last_successful_tick_timestamp_seconds") == (
        cluster.reports[-1].started_at + cluster.reports[-1].duration
    )
    assert _value(cluster, "steadyscale_instances", node_type="cpu", status="launched") == 0
    calls = cluster.autoscaler.provider.calls_by_action()
    assert (
        _value(cluster, "steadyscale_api_calls_total", action="DescribeInstances")
        == (calls["DescribeInstances"])
    )


def test_retries_and_errors_are_counted_by_action_and_code() -> None:
    cluster = make_cluster("none")
    # One server error: botocore retries the call, which then succeeds.
    cluster.emulator.inject(Fault.SERVER_ERROR, "DescribeInstances")
    cluster.tick()
    retried = sum(
        _value(cluster, "steadyscale_api_retries_total", action="DescribeInstances", code=code)
        for code in ("InternalError", "Unavailable")
    )
    assert retried == 1
    assert (
        _value(
            cluster,
            "steadyscale_api_errors_total",
            action="DescribeInstances",
            code="InternalError",
        )
        == 0
    )

    full = make_cluster("none", emulator={"capacity": {"default_pool_size": 0}})
    full.demand(2)
    full.tick()
    assert (
        _value(
            full,
            "steadyscale_api_errors_total",
            action="RunInstances",
            code="InsufficientInstanceCapacity",
        )
        == 1
    )
    assert _value(full, "steadyscale_nodes_launched_total", node_type="cpu") == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    clock = FakeClock()
    one, two = Metrics(clock), Metrics(clock)
    one.launched.labels("cpu").inc(3)
    assert (
        one.registry.get_sample_value("steadyscale_nodes_launched_total", {"node_type": "cpu"}) == 3
    )
    assert (
        two.registry.get_sample_value("steadyscale_nodes_launched_total", {"node_type": "cpu"})
        is None
    )


def test_healthz_turns_unhealthy_when_ticks_stop() -> None:
    cluster = make_cluster("none")
    metrics = cluster.autoscaler.metrics
    stale = cluster.config.metrics.stale_after_seconds(cluster.config)
    assert stale == 3 * 5 + 60
    with MetricsServer(metrics) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, body = _get(f"{server.url}/healthz")
        assert status == 200 and json.loads(body)["seconds_since_last_tick"] is None
        cluster.tick()
        status, body = _get(f"{server.url}/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        # The loop stops ticking; the clock goes on.
        cluster.clock.advance(stale + 1)
        status, body = _get(f"{server.url}/healthz")
        details: dict[str, Any] = json.loads(body)
        assert status == 503 and details["ok"] is False
        assert details["seconds_since_last_tick"] > stale
        cluster.tick()
        assert _get(f"{server.url}/healthz")[0] == 200
        status, text = _get(f"{server.url}/metrics")
        assert status == 200
        assert "steadyscale_last_successful_tick_timestamp_seconds" in text
        assert 'steadyscale_instances{node_type="cpu",status="ready"} 0.0' in text
        assert _get(f"{server.url}/nothing")[0] == 404


def test_healthz_is_unhealthy_when_the_first_tick_never_comes() -> None:
    clock = FakeClock()
    metrics = Metrics(clock, stale_after_seconds=10)
    assert metrics.health()[0]
    clock.advance(11)
    assert not metrics.health()[0]


def test_a_busy_port_is_one_clear_error() -> None:
    busy = r"metrics: cannot listen on 127\.0\.0\.1:\d+"
    with MetricsServer(Metrics(FakeClock())) as first, pytest.raises(SteadyscaleError, match=busy):
        MetricsServer(Metrics(FakeClock()), port=first.port).start()


def test_instances_gauge_keeps_zeros_for_statuses_left() -> None:
    cluster = make_cluster("none")
    cluster.demand(2)
    cluster.run(lambda r: r.capacity_met, max_ticks=10)
    assert cluster.count(Status.READY) == 2
    assert _value(cluster, "steadyscale_instances", node_type="cpu", status="ready") == 2
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=40)
    assert _value(cluster, "steadyscale_instances", node_type="cpu", status="ready") == 0
    assert _value(cluster, "steadyscale_instances", node_type="cpu", status="terminating") == 0


def _config_file(tmp_path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "cluster_name": "m",
        "provider": {"type": "emulator"},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
            }
        },
    }
    data.update(overrides)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("flag", ["nope", "99999", ":80", "host:"])
def test_a_bad_metrics_flag_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    assert main(["run", str(_config_file(tmp_path)), "--metrics", flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--metrics" in err and "PORT" in err


def test_a_bad_metrics_port_in_the_config_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path, metrics={"port": 70000})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.port" in err and err.count("\n") == 1


def test_metrics_flag_accepts_port_host_port_and_off() -> None:
    assert metrics_address(None, "127.0.0.1", 0) == ("127.0.0.1", 0)
    assert metrics_address(None, "127.0.0.1", "off") is None
    assert metrics_address("off", "127.0.0.1", 9000) is None
    assert metrics_address("9464", "127.0.0.1", "off") == ("127.0.0.1", 9464)
    assert metrics_address("[::1]:9464", "127.0.0.1", 0) == ("::1", 9464)


@pytest.mark.parametrize("host", ["", "  "])
def test_an_empty_metrics_host_is_refused_not_every_interface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    path = _config_file(tmp_path, metrics={"host": host})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "metrics.host" in err and "0.0.0.0" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        ("bogus", "metrics.port: give a port between 0 and 65535"),
        (True, "metrics.port: give a port"),
        (-1, "metrics.port: give a port"),
    ],
)
def test_a_bad_metrics_port_is_named_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: Any, expected: str
) -> None:
    assert main(["validate", str(_config_file(tmp_path, metrics={"port": port}))]) == 2
    err = capsys.readouterr().err
    assert expected in err and ".int" not in err and "more problem" not in err


def test_an_unquoted_off_port_in_yaml_serves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(_config_file(tmp_path).read_text() + "metrics: {port: off}\n")
    assert load_config(path).metrics.port == "off"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("metrics.example.com", False),
    ],
)
def test_one_loopback_test_for_every_listening_warning(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_metrics_on_another_loopback_address_do_not_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config_file(tmp_path, scenario=[{"at_seconds": 0, "demand": []}])
    assert (
        main(["run", str(path), "--max-seconds", "1", "--quiet", "--metrics", "127.0.0.2:0"]) == 0
    )
    assert "reachable beyond" not in capsys.readouterr().err


def test_healthz_turns_unhealthy_when_every_tick_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = make_cluster("none")
    metrics = cluster.autoscaler.metrics
    stale = cluster.config.metrics.stale_after_seconds(cluster.config)
    cluster.tick()
    assert metrics.health()[0]

    def crash(report: Any) -> None:
        raise RuntimeError("ledger went away")

    monkeypatch.setattr(cluster.autoscaler, "_tick", crash)
    for _ in range(4):  # the loop goes on ticking, every tick dies in the catch-all
        cluster.clock.advance(stale / 3)
        assert cluster.tick().errors
    healthy, details = metrics.health()
    assert not healthy and details["seconds_since_last_tick"] > stale
    assert _value(cluster, "steadyscale_tick_errors_total") == 4
    assert _value(cluster, "steadyscale_ticks_total") == 1
    monkeypatch.undo()
    cluster.tick()
    assert metrics.health()[0]
