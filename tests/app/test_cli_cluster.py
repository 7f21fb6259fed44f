"""The cluster commands: run (with a scenario), status, request, validate; bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import log_defaults, main

COMMAND = [sys.executable, "-m", "steadyscale"]


def _config(tmp_path: Path, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "cluster_name": "fast",
        "idle_timeout_minutes": 0.2,
        "upscaling_speed": 100,
        "provider": {
            "type": "emulator",
            "emulator": {
                "profile": "realistic",
                "seed": 3,
                "time_scale": 0.01,
                "errors": {
                    "server_error_probability": 0,
                    "lost_response_probability": 0,
                    "timeout_probability": 0,
                },
            },
        },
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 10,
            },
        },
        "scenario": [
            {"at_seconds": 0, "demand": [{"bundle": {"CPU": 2}, "count": 6}]},
            {"at_seconds": 150, "demand": []},
        ],
    }
    data.update(overrides)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=300, check=False, env=env
    )


def test_run_shows_the_whole_story_and_a_clean_summary(tmp_path: Path) -> None:
    result = _run("run", str(_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for phase in (
        "demand is now 6 x {CPU: 2}",
        "not visible yet",
        "visible",
        "running",
        "capacity",
        "terminating 6 node(s)",
        "terminated",
        "summary",
    ):
        assert phase in out, phase
    assert "duplicates         0" in out and "leaks              0" in out
    # stderr is a pipe, as under a supervisor: every node's state change is logged once,
    # with its reason, and nothing else is.
    moves = result.stderr.splitlines()
    assert moves and all(" INFO steadyscale.lifecycle: " in line for line in moves), moves[:5]
    assert sum("-> running: " in line for line in moves) == 6
    assert all(line.rsplit(": ", 1)[1].strip() for line in moves)  # a reason on each
    # The ledger is there for status, with every node terminated.
    status = _run("status", str(tmp_path / "cluster.yaml"), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["node_types"]["cpu"]["counts"]["running"] == 0
    assert report["demand"] == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"log_level": None, "log_format": "human", "quiet": False, "stderr_tty": True},
            ("warning", False),
        ),  # the quick start in a terminal: the progress lines tell it
        (
            {"log_level": None, "log_format": "human", "quiet": False, "stderr_tty": False},
            ("warning", True),
        ),  # a supervised daemon: each node's state change, with its reason
        (
            {"log_level": None, "log_format": "human", "quiet": True, "stderr_tty": True},
            ("warning", True),
        ),
        (
            {"log_level": None, "log_format": "json", "quiet": False, "stderr_tty": True},
            ("info", False),
        ),
        (
            {"log_level": "error", "log_format": "human", "quiet": True, "stderr_tty": False},
            ("error", False),
        ),  # asked for: obeyed
    ],
)
def test_run_logs_node_state_changes_unless_a_terminal_shows_progress(
    options: dict[str, Any], expected: tuple[str, bool]
) -> None:
    assert log_defaults(command="run", **options) == expected
    assert log_defaults(
        command="status", **{**options, "log_format": "human", "log_level": None}
    ) == ("warning", False)


def test_run_json_summary(tmp_path: Path) -> None:
    result = _run("run", str(_config(tmp_path)), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["nodes_launched"] == 6
    assert summary["duplicates"] == 0 and summary["leaks"] == 0
    assert summary["scenario_completed"] is True
    assert summary["api_calls"]["RunInstances"] >= 1
    assert summary["time_to_capacity_seconds"] > 0


def test_request_and_status_use_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, scenario=[])
    assert main(["status", str(config)]) == 2
    assert "no ledger at" in capsys.readouterr().err
    # Before any daemon ran, request creates the ledger: demand is staged for the first run.
    assert main(["request", str(config), "--bundle", "CPU=2", "--count", "1"]) == 0
    assert "demand set: 1 bundle(s)" in capsys.readouterr().out
    assert (tmp_path / ".steadyscale" / "fast.db").exists()
    assert (
        main(
            [
                "request",
                str(config),
                "--bundle",
                "CPU=2",
                "--count",
                "3",
                "--bundle",
                "CPU=1",
                "--count",
                "2",
            ]
        )
        == 0
    )
    assert "demand set: 5 bundle(s)" in capsys.readouterr().out
    assert main(["status", str(config)]) == 0
    out = capsys.readouterr().out
    assert "demand: 3 x {CPU: 2}, 2 x {CPU: 1}" in out
    demand_file = tmp_path / "demand.yaml"
    demand_file.write_text("- {bundle: {CPU: 1}, count: 4}\n")
    assert main(["request", str(config), "--file", str(demand_file)]) == 0
    assert main(["request", str(config), "--clear"]) == 0
    assert "demand cleared" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--bundle", "GPU=1", "--count", "1"],
            "no node type can fit bundle {GPU: 1}: no node type offers GPU; node types offer",
        ),
        (["--bundle", "CPU", "--count", "1"], "write resources as NAME=AMOUNT"),
        (["--bundle", "CPU=1"], "give one --count after each --bundle"),
        ([], "say what to demand"),
    ],
)
def test_bad_requests_are_one_line(
    tmp_path: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, scenario=[])
    (tmp_path / ".steadyscale").mkdir()
    from steadyscale.store.ledger import Ledger  # noqa: PLC0415

    Ledger(tmp_path / ".steadyscale" / "fast.db").close()
    assert main(["request", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cluster_name: [\n", "malformed YAML at line"),
        (
            "cluster_name: c\nprovider: {type: aws}\navailable_node_types: {a: {node_config: "
            "{InstanceType: m5.large, ImageId: ami-1}, resources: {CPU: 1}}}\ncolour: red\n",
            "colour: unknown key",
        ),
        (
            "cluster_name: c\nmax_workers: many\nprovider: {type: aws}\n"
            "available_node_types: {a: {node_config: {InstanceType: m5.large, ImageId: ami-1}, "
            "resources: {CPU: 1}}}\n",
            "max_workers: Input should be a valid integer",
        ),
        (
            "cluster_name: c\nprovider: {type: aws}\navailable_node_types: {a: {node_config: "
            "{InstanceType: m5.large, ImageId: ami-1}, resources: {CPU: 1}, min_workers: 3, "
            "max_workers: 1}}\n",
            "min_workers (3) must be <= max_workers (1)",
        ),
        (
            "cluster_name: c\nprovider: {type: aws}\navailable_node_types: {a: {node_config: "
            "{InstanceType: q9.galactic, ImageId: ami-1}, resources: {CPU: 1}}}\n",
            "unknown instance type 'q9.galactic'",
        ),
    ],
)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_bad_configs_are_one_line_exit_2_and_touch_no_ledger(
    tmp_path: Path, text: str, expected: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / ".steadyscale").exists()


def _aws_config(tmp_path: Path, **provider: Any) -> Path:
    return _config(
        tmp_path, provider={"type": "aws", "region": "us-east-1", **provider}, scenario=[]
    )


def _no_credentials_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/c",
        AWS_CONFIG_FILE="/nonexistent/f",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.mark.parametrize("command", ["validate", "run"])
def test_missing_aws_credentials(tmp_path: Path, command: str) -> None:
    result = _run(command, str(_aws_config(tmp_path)), env=_no_credentials_env())
    assert result.returncode == 2
    assert result.stderr.strip().startswith("steadyscale: error: no AWS credentials found")
    assert not (tmp_path / ".steadyscale").exists()


def test_unreachable_endpoint(tmp_path: Path) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    result = _run(
        "run",
        str(_aws_config(tmp_path, endpoint_url="http://127.0.0.1:9", max_attempts=1)),
        env=env,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "steadyscale: error: cannot reach http://127.0.0.1:9: Could not connect to the "
        'endpoint URL: "http://127.0.0.1:9/"'
    )
    assert not (tmp_path / ".steadyscale").exists()


def test_validate_says_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_config(tmp_path))]) == 0
    assert capsys.readouterr().out.startswith("ok: cluster fast, provider emulator")


def test_sigterm_stops_the_daemon_cleanly_with_a_summary(tmp_path: Path) -> None:
    import signal  # noqa: PLC0415

    config = _config(tmp_path, scenario=[])
    proc = subprocess.Popen(
        [*COMMAND, "run", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the daemon is up once it says where it runs
    assert first.startswith("steadyscale: cluster fast on embedded emulator")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "summary" in out and "Traceback" not in err


def test_non_finite_and_tiny_amounts_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, scenario=[])
    (tmp_path / ".steadyscale").mkdir()
    from steadyscale.store.ledger import Ledger  # noqa: PLC0415

    Ledger(tmp_path / ".steadyscale" / "fast.db").close()
    for bundle in ("CPU=1e-320", "CPU=inf", "CPU=nan"):
        assert main(["request", str(config), "--bundle", bundle, "--count", "1"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
    infinite = _config(tmp_path, upscaling_speed=float("inf"))
    assert main(["validate", str(infinite)]) == 2
    assert "upscaling_speed: " in capsys.readouterr().err


def test_node_config_is_checked_against_run_instances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        available_node_types={
            "cpu": {
                "node_config": {
                    "InstanceType": "m5.large",
                    "ImageId": "ami-1",
                    "EbsOptimized": "yes",
                },
                "resources": {"CPU": 2},
            }
        },
        scenario=[],
    )
    assert main(["validate", str(config)]) == 2
    assert (
        "available_node_types.cpu.node_config: Invalid type for parameter EbsOptimized"
        in capsys.readouterr().err
    )


def test_a_second_daemon_on_the_same_ledger_refuses_to_start(tmp_path: Path) -> None:
    import signal  # noqa: PLC0415

    config = _config(tmp_path, scenario=[])
    first = subprocess.Popen(
        [*COMMAND, "run", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert first.stdout is not None
    assert first.stdout.readline().startswith("steadyscale: cluster fast")
    try:
        second = _run("run", str(config))
        assert second.returncode == 2
        assert second.stderr.strip().startswith(
            f"steadyscale: error: another steadyscale daemon (pid {first.pid}) is running on "
            "ledger "
        )
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0


def test_a_corrupt_ledger_stops_the_daemon_and_is_kept(tmp_path: Path) -> None:
    config = _config(tmp_path, scenario=[])
    ledger = tmp_path / ".steadyscale" / "fast.db"
    ledger.parent.mkdir()
    ledger.write_bytes(b"garbage" * 1000)
    result = _run("run", str(config))
    assert result.returncode == 2
    assert "is unreadable" in result.stderr and result.stderr.count("\n") == 1
    assert ledger.read_bytes() == b"garbage" * 1000
    status = _run("status", str(config))
    assert status.returncode == 2 and "is unreadable" in status.stderr
