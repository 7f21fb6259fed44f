"""status: what it shows of a live cluster, its JSON against the published schema, reading
beside a daemon that holds the writer lock, --watch, and bad arguments."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from rich.console import Console

import steadyscale.ops.status as status_module
from steadyscale.app.cli import main
from steadyscale.config import parse_config
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.ops.status import COLUMNS, collect_status, read_status, render_status, watch_status
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger
from tests.cluster import Cluster, make_cluster
from tests.ledgers import BACKENDS, ledger_factory

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "status.schema.json").read_text())
NODE_TYPES = {
    "cpu": {
        "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
        "resources": {"CPU": 2},
        "max_workers": 10,
    }
}


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Cluster, Path]]:
    """A cluster mid-scale-up on a ledger (a file, or a PostgreSQL database) whose writer
    lock it holds, as a daemon would: two of four nodes refused for capacity, the others
    launched, not yet visible; and a config file pointing at the same ledger, for the CLI."""
    ledger = ledger_factory(request, tmp_path)("ledger.db")
    cluster = make_cluster(
        "realistic",
        ledger_path=str(ledger),
        available_node_types=NODE_TYPES,
        emulator={
            "capacity": {"pools": {"m5.large/*": 2}},
            "visibility": {"median": 60, "p99": 90, "max": 120},
        },
    )
    cluster.ledger.acquire_writer()
    cluster.demand(4)
    cluster.tick()
    config = tmp_path / "cluster.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cluster_name": "test",
                "ledger": str(ledger),
                "provider": {"type": "emulator"},
                "available_node_types": NODE_TYPES,
            }
        )
    )
    yield cluster, config
    cluster.ledger.close()
    cluster.emulator.stop()


def test_status_shows_counts_demand_failures_and_the_oldest_invisible_node(
    live: tuple[Cluster, Path],
) -> None:
    cluster, _ = live
    cluster.clock.advance(7)
    report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
    assert report.statuses == COLUMNS and "terminated" not in COLUMNS
    cpu = report.node_types["cpu"]
    assert cpu.counts[Status.LAUNCHED] == 2 and cpu.total == sum(cpu.counts.values())
    assert report.totals == cpu.counts
    assert report.pending_demand == 4
    assert report.not_visible == 2 and report.oldest_not_visible is not None
    assert report.oldest_not_visible.seconds_since_launch == 12.0  # one tick + 7 s
    [failure, *_] = report.recent_failures
    assert failure.status == "launch_failed" and failure.node_type == "cpu"
    assert report.progress is not None and not report.progress.capacity_met
    text = render_status(report)
    for shown in (
        "cluster test",
        "cpu",
        "m5.large",
        "launched",
        "demand: 4 x {CPU: 2}",
        "demand not met yet",
        f"oldest {report.oldest_not_visible.instance_id} (cpu), 12s since launch",
        "recent failures",
        failure.reason[:20],
    ):
        assert shown in text, shown


def test_status_says_when_the_daemon_has_met_the_demand(live: tuple[Cluster, Path]) -> None:
    cluster, _ = live
    # The pool holds two nodes: two bundles stay unmet, and status says so.
    cluster.run(lambda r: cluster.count(Status.READY) == 2 and r.unmet == 2, max_ticks=120)
    report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
    assert report.progress is not None and not report.progress.capacity_met
    assert report.progress.unmet == 2
    assert report.progress.since == cluster.reports[1].started_at  # unchanged since
    assert "2 bundle(s) held back by limits or pacing" in render_status(report)
    cluster.demand(2)
    cluster.run(lambda r: r.capacity_met, max_ticks=20)
    report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
    assert report.progress is not None and report.progress.capacity_met
    assert "demand met: on ready nodes" in render_status(report)


def test_status_json_of_a_live_cluster_validates_against_the_published_schema(
    live: tuple[Cluster, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, config = live
    assert main(["status", str(config), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    jsonschema.validate(printed, SCHEMA)
    assert printed["node_types"]["cpu"]["counts"]["launched"] == 2
    assert printed["recent_failures"][0]["status"] == "launch_failed"
    # The schema is strict: a renamed or unknown key fails validation.
    printed["node_types"]["cpu"]["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(printed, SCHEMA)


def test_status_reads_beside_a_daemon_in_the_middle_of_a_write(live: tuple[Cluster, Path]) -> None:
    cluster, _ = live
    [node, *_] = cluster.ledger.nodes()
    node.idle_since = cluster.clock.now()
    with cluster.ledger.transaction():  # the daemon's write, not yet committed
        cluster.ledger.save_nodes([node])
        cluster.ledger.set_meta("demand_updated_at", "1")
        report = read_status(cluster.config, cluster.ledger.location)
        assert report.demand_updated_at != 1.0  # the last committed state, no waiting
    assert read_status(cluster.config, cluster.ledger.location).demand_updated_at == 1.0


def test_watch_redraws_every_interval_until_stopped(live: tuple[Cluster, Path]) -> None:
    cluster, _ = live
    clock = FakeClock()
    counts = iter([3, 5, 7])

    def read() -> Any:
        cluster.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=next(counts))], 0.0)
        return read_status(cluster.config, cluster.ledger.location)

    out = io.StringIO()
    frames = watch_status(
        read,
        interval=2.5,
        clock=clock,
        console=Console(file=out, width=120, force_terminal=True),
        keep_going=lambda: len(clock.sleeps) < 2,
    )
    assert frames == 3 and clock.sleeps == [2.5, 2.5]
    for count in (3, 5, 7):
        assert f"demand: {count} x" in out.getvalue()


def test_watch_on_a_pipe_prints_one_frame_after_another(live: tuple[Cluster, Path]) -> None:
    cluster, _ = live
    clock = FakeClock()
    out = io.StringIO()
    frames = watch_status(
        lambda: read_status(cluster.config, cluster.ledger.location),
        interval=1,
        clock=clock,
        console=Console(file=out, width=200),
        keep_going=lambda: len(clock.sleeps) < 2,
    )
    assert frames == 3 and out.getvalue().count("cluster test") == 3


def test_status_watch_in_a_terminal_redraws_until_ctrl_c(live: tuple[Cluster, Path]) -> None:
    _, config = live
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "steadyscale", "status", str(config), "--watch", "0.05"],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60

    def drain() -> bool:
        nonlocal seen
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                seen += os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                return False
        return True

    try:
        while seen.count(b"recent failures") < 3 and time.monotonic() < deadline:
            drain()
        process.send_signal(signal.SIGINT)
        # Keep reading so the child never blocks on a full terminal while it stops.
        while process.poll() is None and time.monotonic() < deadline and drain():
            pass
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert seen.count(b"recent failures") >= 3  # redrawn, not printed once
    assert process.stderr is not None and process.stderr.read() == b""  # no traceback


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--watch", "0"], "--watch takes a number of seconds > 0, got 0"),
        (["--watch", "nan"], "--watch takes a number of seconds > 0"),
        (["--watch", "--json"], "--json prints once"),
    ],
)
def test_bad_status_arguments_are_one_line(
    live: tuple[Cluster, Path], args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = live
    assert main(["status", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_a_ledger_of_another_version_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.db"
    ledger = Ledger(path)
    ledger.set_meta("schema_version", "99")
    ledger.close()
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cluster_name": "test",
                "ledger": str(path),
                "provider": {"type": "emulator"},
                "available_node_types": NODE_TYPES,
            }
        )
    )
    assert main(["status", str(config)]) == 2
    err = capsys.readouterr().err
    assert "schema version 99" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "interval"),
    [
        (["--watch", "{config}"], 2.0),
        (["{config}", "--watch"], 2.0),
        (["--watch", "0.5", "{config}"], 0.5),
        (["{config}", "--watch", "3"], 3.0),
    ],
)
def test_status_watch_takes_config_and_seconds_in_either_order(
    live: tuple[Cluster, Path], monkeypatch: pytest.MonkeyPatch, args: list[str], interval: float
) -> None:
    _, config = live
    seen: list[float] = []

    def watch(read: Any, *, interval: float, **_: Any) -> int:
        seen.append(interval)
        return 1

    monkeypatch.setattr(status_module, "watch_status", watch)
    assert main(["status", *(a.format(config=config) for a in args)]) == 0
    assert seen == [interval]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--watch"], "status needs CONFIG"),
        ([], "status needs CONFIG"),
        (["--watch", "x.yaml", "c.yaml"], "--watch takes a number of seconds > 0, got 'x.yaml'"),
    ],
)
def test_status_without_a_config_is_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def _config_file(tmp_path: Path, ledger: Path, node_types: dict[str, Any]) -> Path:
    config = tmp_path / "cluster.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cluster_name": "test",
                "ledger": str(ledger),
                "provider": {"type": "emulator"},
                "available_node_types": node_types,
            }
        )
    )
    return config


def test_demand_no_node_type_can_hold_is_never_met_in_status_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gpu type is gone while 4 x {CPU: 2, GPU: 1} are demanded: status says they
    are not met and why, as `request` says when it refuses the same bundle."""
    ledger = tmp_path / "ledger.db"
    cluster = make_cluster("realistic", ledger_path=str(ledger), available_node_types=NODE_TYPES)
    config = _config_file(tmp_path, ledger, NODE_TYPES)
    try:
        gpu = DemandItem(bundle={"CPU": 2, "GPU": 1}, count=4)
        cluster.ledger.set_demand([gpu], cluster.clock.now())
        cluster.run(lambda r: r.settled, max_ticks=10)
        report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
        progress = report.progress
        assert progress is not None and not progress.capacity_met and progress.infeasible == 4
        [entry] = progress.infeasible_demand
        assert (entry.count, entry.cause, entry.resource) == (4, "not_offered", "GPU")
        text = render_status(report)
        assert "demand met" not in text
        assert "demand not met: 4 bundle(s) no node type can hold" in text
        assert "4 x {CPU: 2, GPU: 1}: no node type offers GPU" in text
        assert main(["status", str(config), "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        jsonschema.validate(printed, SCHEMA)
        assert printed["progress"]["capacity_met"] is False
        assert printed["progress"]["infeasible_demand"][0]["why"] == "no node type offers GPU"
        # request refuses the same bundle for the same reason.
        assert main(["request", str(config), "--bundle", "CPU=2,GPU=1", "--count", "4"]) == 2
        assert f"{{CPU: 2, GPU: 1}}: {entry.why}; node types offer" in capsys.readouterr().err
        # With demand that fits beside it, the rest is met and said so; the whole is not.
        cpu = DemandItem(bundle={"CPU": 2}, count=2)
        cluster.ledger.set_demand([cpu, gpu], cluster.clock.now())
        cluster.run(lambda r: r.feasible_met, max_ticks=60)
        report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
        assert report.progress is not None and not report.progress.capacity_met
        text = render_status(report)
        assert "demand not met: 4 bundle(s) no node type can hold" in text
        assert "the rest of the demand is met: on ready nodes" in text
    finally:
        cluster.ledger.close()
        cluster.emulator.stop()


def test_progress_an_earlier_daemon_wrote_is_never_met_with_demand_that_fits_nothing(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.set_demand([DemandItem(bundle={"GPU": 1}, count=4)], 0.0)
    ledger.save_progress({"unmet": 0, "infeasible": 4, "capacity_met": True, "since": 0.0})
    config = parse_config(
        {
            "cluster_name": "test",
            "provider": {"type": "emulator"},
            "available_node_types": NODE_TYPES,
        }
    )
    progress = collect_status(config, ledger, now=1.0).progress
    ledger.close()
    assert progress is not None
    assert (progress.capacity_met, progress.feasible_met, progress.infeasible) == (False, True, 4)


PROTECTED_TYPES = {
    "cpu": {
        "node_config": {
            "InstanceType": "m5.large",
            "ImageId": "ami-12345678",
            "DisableApiTermination": True,
        },
        "resources": {"CPU": 2},
        "max_workers": 10,
    }
}


def test_a_node_ec2_refuses_to_terminate_is_a_failure_until_it_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Launched with termination protection, scaled down: TerminateInstances answers
    OperationNotPermitted; status lists the nodes among recent failures with EC2's reason
    for as long as they stay, and not once they are terminated."""
    ledger = tmp_path / "ledger.db"
    cluster = make_cluster(
        "realistic",
        ledger_path=str(ledger),
        available_node_types=PROTECTED_TYPES,
        idle_timeout_minutes=0,
    )
    config = _config_file(tmp_path, ledger, PROTECTED_TYPES)
    try:
        cluster.demand(2)
        cluster.run(lambda r: r.capacity_met, max_ticks=60)
        cluster.demand(0)
        cluster.run(lambda r: cluster.count(Status.TERMINATING) == 2, max_ticks=10)
        protected = sorted(r.instance_id or "" for r in cluster.autoscaler.records.values())
        # Long after the refusal (a retry every 300 s), still listed, newest first.
        for _ in range(80):
            cluster.tick()
        assert sorted(i.instance_id for i in cluster.alive()) == protected
        report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
        held = [f for f in report.recent_failures if f.held]
        assert sorted(f.instance_id or "" for f in held) == protected
        assert report.refused_terminations == 2
        for failure in held:
            assert failure.status == "terminating" and failure.node_type == "cpu"
            assert failure.reason.startswith("TerminateInstances refused: OperationNotPermitted")
        text = render_status(report)
        assert "recent failures: none" not in text
        assert text.count("terminating (refused)") == 2 and "OperationNotPermitted" in text
        assert main(["status", str(config), "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        jsonschema.validate(printed, SCHEMA)
        assert [f["held"] for f in printed["recent_failures"]] == [True, True]
        assert printed["refused_terminations"] == 2
        # Protection off: the next retry is accepted, and status no longer lists them.
        for instance_id in protected:
            cluster.emulator.client().modify_instance_attribute(
                InstanceId=instance_id, DisableApiTermination={"Value": False}
            )
        cluster.run(lambda r: not cluster.alive(), max_ticks=120)
        report = collect_status(cluster.config, cluster.ledger, now=cluster.clock.now())
        assert report.recent_failures == [] and report.refused_terminations == 0
        assert "recent failures: none" in render_status(report)
    finally:
        cluster.ledger.close()
        cluster.emulator.stop()
