"""End to end: ``steadyscale run`` on the embedded emulator serves the API (uvicorn on
127.0.0.1), the Python client drives it, and ``request`` / ``status`` go through it; demand
staged by ``request`` before the first run is where the daemon starts from."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.app.cli.run import api_settings
from steadyscale.app.loading import load_cluster_config
from steadyscale.client import Client, DemandItem, UsageReportIn
from steadyscale.testing.waiting import wait_for

TOKEN = "e2e-" + "t" * 28
READ_TOKEN = "e2e-read-" + "r" * 24


def _config(tmp_path: Path, **overrides: Any) -> Path:
    (tmp_path / "tokens").write_text(f"ops:{TOKEN}\n")
    (tmp_path / "read-tokens").write_text(f"dash:{READ_TOKEN}\n")
    data: dict[str, Any] = {
        "cluster_name": "e2e",
        "idle_timeout_minutes": 0.5,
        "upscaling_speed": 100,
        "provider": {
            "type": "emulator",
            "emulator": {
                "profile": "realistic",
                "seed": 5,
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
        "api": {
            "listen": "127.0.0.1:0",
            "tokens_file": "tokens",
            "read_tokens_file": "read-tokens",
        },
    }
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, str, subprocess.Popen[str]]]:
    config = _config(tmp_path)
    # Staged before any daemon ran: request creates the ledger.
    assert main(["request", str(config), "--bundle", "CPU=2", "--count", "3"]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYSCALE_API")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "steadyscale", "run", str(config), "--max-seconds", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        found = re.search(r"API and web page at (http://127\.0\.0\.1:\d+)/", line)
        if found:
            url = found.group(1)
            break
    assert url is not None, proc.stderr.read() if proc.stderr else ""
    try:
        yield config, url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _until(check: Any, seconds: float = 30.0) -> Any:
    return wait_for(check, seconds, "the daemon's answer", poll=0.1)


def test_run_serves_the_api_that_the_client_and_the_cli_use(
    daemon: tuple[Path, str, subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, url, _ = daemon
    with Client(url, TOKEN) as api:
        ready = _until(lambda: [n for n in api.nodes() if n.ready and len(n.history) > 3])
        assert api.demand().entries["default"][0].count == 3  # the staged demand
        node = ready[0]
        assert node.instance_id and node.private_ip and node.reason
        assert [h.status for h in node.history][:2] == ["queued", "requested"]
        assert api.report_usage([UsageReportIn(node=node.instance_id, busy=True)]) == 1
        assert _until(lambda: [n for n in api.nodes() if n.usage and n.usage.busy])
        api.set_entry("farm", [DemandItem(bundle={"CPU": 2}, count=1)], idempotency_key="f1")
        assert _until(lambda: len(api.nodes()) >= 4)
        events = list(api.events(after=0, seconds=1.0))
        assert {"node", "launch"} <= {e.kind for e in events}
        assert api.status().cluster_name == "e2e"

    # The CLI finds the daemon by the address it left in its ledger (api.listen port 0).
    monkeypatch.delenv("STEADYSCALE_API_TOKEN", raising=False)
    assert main(["status", str(config), "--json"]) == 0
    assert '"cluster_name":"e2e"' in capsys.readouterr().out
    assert main(["request", str(config), "--bundle", "CPU=2", "--count", "2"]) == 0
    assert "through the daemon's API at http://127.0.0.1:" in capsys.readouterr().out
    with Client(url, READ_TOKEN) as api:
        assert api.demand().pending_demand == 2
        assert list(api.demand().entries) == ["default"]


def test_an_api_beyond_loopback_without_tokens_refuses_to_start(tmp_path: Path) -> None:
    config = _config(tmp_path, api={"listen": "0.0.0.0:0"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEADYSCALE_API")}
    result = subprocess.run(
        [sys.executable, "-m", "steadyscale", "run", str(config), "--max-seconds", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "no API token is set" in result.stderr
    assert result.stderr.count("\n") == 1


def test_no_api_block_and_no_flag_serves_nothing(tmp_path: Path) -> None:
    plain = load_cluster_config(str(_config(tmp_path, api=None)))
    assert api_settings(plain, None, no_api=False) is None
    served = api_settings(plain, "", no_api=False)
    assert served is not None and served.listen == "127.0.0.1:8470"
    given = api_settings(plain, "127.0.0.1:9000", no_api=False)
    assert given is not None and given.listen == "127.0.0.1:9000"
    configured = load_cluster_config(str(_config(tmp_path)))
    assert api_settings(configured, None, no_api=True) is None
