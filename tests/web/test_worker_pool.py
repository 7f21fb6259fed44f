"""examples/worker_pool.py against a real daemon on the embedded emulator: its jobs run on
the nodes steadyscale launches for its demand, no node is taken from under a running job
(the node type scales down by the pool's reports and drains before terminating), and the
pool acks each drain once the node's jobs are done."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from steadyscale.testing.api_daemon import ApiDaemon
from tests.web.conftest import WRITE_TOKEN, cluster_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "worker_pool.py"


def test_the_worker_pool_runs_its_jobs_and_lets_its_nodes_go(tmp_path: Path) -> None:
    node_type = {
        "node_config": {"InstanceType": "m5.xlarge", "ImageId": "ami-12345678"},
        "resources": {"CPU": 4},
        "max_workers": 10,
        "scale_down": "reported",
        "drain": {"timeout_seconds": 3000},  # (150 s real: only the pool's ack ends it)
    }
    config = cluster_config(tmp_path, available_node_types={"cpu": node_type})
    env = {"STEADYSCALE_API_TOKEN": WRITE_TOKEN}
    with ApiDaemon(config, env=env) as daemon:
        pool = ["--jobs", "8", "--slots", "2", "--job-seconds", "2", "--interval", "0.3", "--json"]
        run = subprocess.run(
            [sys.executable, str(EXAMPLE), "--url", daemon.url, *pool, "--duration", "90"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env=daemon.env,
        )
        assert run.returncode == 0, run.stderr + daemon.log()
        summary = json.loads(run.stdout)
    assert summary["jobs_done"] == 8 and summary["jobs_left"] == 0, summary
    assert summary["jobs_lost"] == 0, summary  # no node went away under a job
    assert summary["nodes_used"] >= 2, summary
    assert summary["drains_acked"] == summary["nodes_used"], summary  # each let go by us
