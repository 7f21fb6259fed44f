"""A new ledger in front of a live cluster (F12: the ledger's disk is gone): ``run``
refuses with one line and touches nothing; ``ledger adopt`` takes the cluster over and the
daemon then scales it down; ``run --terminate-unknown`` terminates it; ``ledger export``
and ``import`` move a ledger. The CLI runs as a subprocess against the emulator on a fake
clock; every verdict comes from the emulator's ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from steadyscale.core.instances import TAG_LEDGER
from steadyscale.core.lifecycle import Status
from steadyscale.emulator.pytest_plugin import EmulatorFactory
from steadyscale.retries.clock import FakeClock
from tests.app.test_rename import CREDENTIALS, EC2, Daemon, _cli
from tests.conftest import QUIET


@pytest.fixture
def cloud(
    ec2_emulator_factory: EmulatorFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EC2:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    clock = FakeClock(1_000_000.0)
    return EC2(ec2_emulator_factory("realistic", clock=clock, **QUIET), clock, tmp_path)


@pytest.fixture
def opened() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        daemon.close()


def _lost_ledger(cloud: EC2, count: int = 4) -> tuple[Path, set[str]]:
    """A cluster of ``count`` ready nodes whose ledger is then lost (its disk is gone)."""
    config = cloud.config("a")
    daemon = Daemon(cloud, config)
    daemon.demand(count)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == count)
    daemon.close()
    for path in (cloud.directory / ".steadyscale").glob("a.db*"):
        path.unlink()
    return config, {i.instance_id for i in cloud.alive("a")}


def test_a_new_ledger_facing_a_live_cluster_refuses_to_act_and_says_the_two_ways_out(
    cloud: EC2,
) -> None:
    config, alive = _lost_ledger(cloud)
    launches, terminates = cloud.calls("RunInstances"), cloud.calls("TerminateInstances")
    result = _cli("run", config, "--max-seconds", "5")
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert line == (
        f"steadyscale: error: the ledger {cloud.directory / '.steadyscale' / 'a.db'} is new, "
        "but EC2 shows 4 live instance(s) tagged steadyscale:cluster=a that it cannot explain; "
        f"nothing was done. Take them over: steadyscale ledger adopt {config}, or terminate "
        f"them: steadyscale run {config} --terminate-unknown"
    )
    assert (cloud.calls("RunInstances"), cloud.calls("TerminateInstances")) == (
        launches,
        terminates,
    )
    assert {i.instance_id for i in cloud.alive("a")} == alive


def test_adopt_takes_the_cluster_over_and_the_daemon_scales_it_down_with_no_leak(
    cloud: EC2, opened: list[Daemon]
) -> None:
    config, alive = _lost_ledger(cloud)
    launches = cloud.calls("RunInstances")
    result = _cli("ledger", "adopt", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "adopted 4 instance(s): 4 x cpu"
    daemon = Daemon(cloud, config)
    opened.append(daemon)
    assert {r.instance_id for r in daemon.ledger.nodes()} == alive
    tagged = {i.instance_id for i in cloud.alive("a") if i.tags.get(TAG_LEDGER)}
    assert tagged <= alive  # those EC2 did not tag yet are tagged by the next adopt
    daemon.demand(0)
    daemon.run(lambda: not cloud.alive("a"))
    assert cloud.calls("RunInstances") == launches  # nothing launched, nothing leaked


def test_adopted_node_types_the_config_no_longer_has_retire(
    cloud: EC2, opened: list[Daemon]
) -> None:
    config, _ = _lost_ledger(cloud, count=2)
    cloud.config(
        "a",
        available_node_types={
            "big": {
                "node_config": {"InstanceType": "m5.xlarge", "ImageId": "ami-12345678"},
                "resources": {"CPU": 4},
                "max_workers": 5,
            }
        },
    )
    result = _cli("ledger", "adopt", config)
    assert result.returncode == 0, result.stderr
    assert (
        "2 of node type cpu, which the config does not have: they retire like a removed "
        "node type's" in result.stdout
    )
    daemon = Daemon(cloud, config)
    opened.append(daemon)
    daemon.demand(1)  # one bundle of CPU 2: a big node takes it, then the cpu nodes go
    daemon.run(lambda: not [i for i in cloud.alive("a") if i.instance_type == "m5.large"])
    assert [i.instance_type for i in cloud.alive("a")] == ["m5.xlarge"]


def test_terminate_unknown_terminates_what_the_new_ledger_cannot_explain(cloud: EC2) -> None:
    config, alive = _lost_ledger(cloud)
    result = _cli("run", config, "--terminate-unknown", "--max-seconds", "2", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "terminating 4 cluster instance(s) the ledger cannot explain" in result.stderr
    cloud.clock.advance(600)
    assert cloud.alive("a") == []


def test_adopt_is_refused_for_a_backend_that_starts_empty(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "cluster_name: c\nprovider: {type: emulator}\navailable_node_types:\n"
        "  cpu: {node_config: {InstanceType: m5.large, ImageId: ami-12345678},\n"
        "        resources: {CPU: 2}}\n"
    )
    result = _cli("ledger", "adopt", config)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "steadyscale: error: provider.type emulator starts empty each run: nothing to adopt "
        "(adopt takes over the instances of an EC2 endpoint, provider.type aws)"
    ]


def test_export_then_import_moves_the_ledger_and_bad_files_are_one_line(
    cloud: EC2, tmp_path: Path
) -> None:
    config = cloud.config("a")
    daemon = Daemon(cloud, config)
    daemon.demand(2)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == 2)
    daemon.close()
    backup = tmp_path / "backup.json"
    assert _cli("ledger", "export", config, "-o", backup).returncode == 0
    exported = json.loads(backup.read_text())
    moved = cloud.config("a", file="moved.yaml", ledger=str(tmp_path / "elsewhere" / "a.db"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = _cli("ledger", "import", moved, bad)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"steadyscale: error: {bad}: not JSON")
    result = _cli("ledger", "import", moved, backup)
    assert result.returncode == 0, result.stderr
    assert _cli("ledger", "export", moved).stdout == backup.read_text()
    again = _cli("ledger", "import", moved, backup)
    assert again.returncode == 2
    assert "is not empty: import only into a new ledger" in again.stderr
    # The moved ledger is the cluster's: it starts without a refusal and scales it down.
    result = _cli("run", moved, "--max-seconds", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert exported["ledger_id"] == cloud.alive("a")[0].tags[TAG_LEDGER]
