"""A cluster whose ``cluster_name`` changed: refused while the ledger of its former name
tracks live nodes, carried over by ``steadyscale ledger carry-over``, never an orphan.

The daemons run as ``steadyscale run`` opens them (``open_runtime``) against an emulator on
a fake clock; the CLI runs as a subprocess where its exit code and one-line error are the
point. Every verdict comes from the emulator's ground truth.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.app.runtime import Runtime, build_autoscaler, open_runtime
from steadyscale.config import load_config
from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.emulator import Emulator
from steadyscale.emulator.pytest_plugin import EmulatorFactory
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger, LedgerError
from steadyscale.store.ownership import carried, claim, set_carried
from tests.conftest import QUIET

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


class EC2:
    """The emulator on a fake clock, and the config files of the clusters it serves."""

    def __init__(self, emulator: Emulator, clock: FakeClock, directory: Path) -> None:
        self.emulator = emulator
        self.clock = clock
        self.directory = directory

    def config(self, cluster_name: str, file: str = "cluster.yaml", **overrides: Any) -> Path:
        """Write (or rewrite) a config file for ``cluster_name``."""
        data: dict[str, Any] = {
            "cluster_name": cluster_name,
            "idle_timeout_minutes": 0,
            "upscaling_speed": 100,
            "loop_interval_seconds": 5,
            "listing_interval_seconds": 10,
            "provider": {
                "type": "aws",
                "region": "us-east-1",
                "endpoint_url": self.emulator.endpoint_url,
            },
            "available_node_types": {
                "cpu": {
                    "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                    "resources": {"CPU": 2},
                    "max_workers": 20,
                },
            },
        }
        data.update(overrides)
        path = self.directory / file
        path.write_text(yaml.safe_dump(data))
        return path

    def alive(self, cluster_name: str | None = None) -> list[TrackedInstance]:
        """Instances not terminated, of ``cluster_name`` (any, if None)."""
        return [
            i
            for i in self.emulator.truth()
            if i.state.value != "terminated"
            and (cluster_name is None or i.tags.get(TAG_CLUSTER) == cluster_name)
        ]

    def launched(self) -> list[TrackedInstance]:
        return self.emulator.truth(include_gone=True)

    def calls(self, action: str) -> int:
        return self.emulator.calls.count(action)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator's credentials in the environment, as a user exports them for an
    ``aws`` config; boto3's default session (which keeps the credentials it found) is
    this test's own."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def ec2(ec2_emulator_factory: EmulatorFactory, tmp_path: Path, credentials: None) -> EC2:
    clock = FakeClock(1_000_000.0)
    return EC2(ec2_emulator_factory("realistic", clock=clock, **QUIET), clock, tmp_path)


class Daemon:
    """``steadyscale run CONFIG`` in-process, ticking on the emulator's clock."""

    def __init__(self, ec2: EC2, config: Path) -> None:
        self.ec2 = ec2
        self.runtime: Runtime = open_runtime(load_config(config), config, clock=ec2.clock)
        self.autoscaler: Autoscaler = build_autoscaler(self.runtime)

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger

    def demand(self, count: int) -> None:
        items = [DemandItem(bundle={"CPU": 2}, count=count)] if count else []
        self.ledger.set_demand(items, self.ec2.clock.now())

    def nodes(self, status: Status) -> list[NodeRecord]:
        return [r for r in self.autoscaler.records.values() if r.status is status]

    def run(self, until: Callable[[], bool], max_ticks: int = 300) -> None:
        for _ in range(max_ticks):
            self.autoscaler.tick()
            self.ec2.clock.advance(self.runtime.config.loop_interval_seconds)
            if until():
                return
        raise AssertionError(f"no convergence in {max_ticks} ticks: {self.autoscaler.counts()}")

    def close(self) -> None:
        self.runtime.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test opened, closed at its end (a daemon holds its ledger's lock)."""
    opened: list[Daemon] = []
    yield opened
    for daemon in opened:
        daemon.close()


def _cluster_of_six(ec2: EC2, config: Path) -> set[str]:
    """Run cluster ``a`` to six ready nodes under demand and stop its daemon, as the issue's
    user did; the ids of its instances."""
    daemon = Daemon(ec2, config)
    daemon.demand(6)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == 6)
    daemon.close()
    assert len(ec2.alive("a")) == 6
    return {i.instance_id for i in ec2.alive("a")}


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steadyscale", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **CREDENTIALS},
    )


def test_a_renamed_cluster_is_refused_with_one_line_naming_its_ledger_and_the_ways_out(
    ec2: EC2,
) -> None:
    config = ec2.config("a")
    six = _cluster_of_six(ec2, config)
    launches, terminates = ec2.calls("RunInstances"), ec2.calls("TerminateInstances")
    ec2.config("b")  # the user renames the cluster and starts it again
    result = _cli("run", config, "--max-seconds", "1")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    old = ec2.directory / ".steadyscale" / "a.db"
    assert line == (
        f"steadyscale: error: cluster_name is now b, but this config's ledger {old} "
        "(cluster a, 6 live node(s)) still tracks instances tagged steadyscale:cluster=a, "
        "which cluster b would never see; set cluster_name back to a, or carry the cluster "
        f"over to b with: steadyscale ledger carry-over {config} --from a"
    )
    # Nothing started: no ledger for b, nothing launched or terminated, the six run on.
    assert not (ec2.directory / ".steadyscale" / "b.db").exists()
    assert (ec2.calls("RunInstances"), ec2.calls("TerminateInstances")) == (launches, terminates)
    assert {i.instance_id for i in ec2.alive()} == six


def test_renaming_back_runs_the_cluster_as_before(ec2: EC2, daemons: list[Daemon]) -> None:
    config = ec2.config("a")
    six = _cluster_of_six(ec2, config)
    ec2.config("b")
    with pytest.raises(LedgerError, match="set cluster_name back to a"):
        open_runtime(load_config(config), config, clock=ec2.clock)
    ec2.config("a")
    launches = ec2.calls("RunInstances")
    daemon = Daemon(ec2, config)
    daemons.append(daemon)
    daemon.run(lambda: daemon.autoscaler.ticks >= 5)
    assert {r.instance_id for r in daemon.nodes(Status.READY)} == six
    assert ec2.calls("RunInstances") == launches
    daemon.demand(0)
    daemon.run(lambda: not ec2.alive() and not daemon.ledger.nodes())


def test_another_clusters_ledger_beside_does_not_block_a_new_cluster(
    ec2: EC2, daemons: list[Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    _cluster_of_six(ec2, ec2.config("a", file="one.yaml"))
    # A ledger of an older steadyscale, which recorded no config: it cannot be told apart
    # from another cluster's, so it is only warned about.
    older = Ledger(ec2.directory / ".steadyscale" / "older.db")
    with older.transaction():
        older.save_nodes(
            [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
        )
    older.close()
    with caplog.at_level(logging.WARNING, logger="steadyscale.runtime"):
        daemon = Daemon(ec2, ec2.config("b", file="two.yaml"))
    daemons.append(daemon)
    assert [r.getMessage() for r in caplog.records] == [
        f"ledger {older.path} (of an older steadyscale) tracks 1 live node(s); if it is this "
        "cluster's under a former cluster_name, stop and carry it over: steadyscale ledger "
        f"carry-over {ec2.directory / 'two.yaml'} --from older"
    ]
    daemon.demand(2)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == 2)
    assert len(ec2.alive("b")) == 2 and len(ec2.alive("a")) == 6


def test_a_new_cluster_may_not_take_a_name_another_ledger_still_carries(ec2: EC2) -> None:
    """After cluster ``a`` was carried over to ``b``, its instances keep the tag ``a``: a
    new cluster named ``a`` would take them for strangers and terminate them."""
    state = ec2.directory / ".steadyscale"
    ledger = Ledger(state / "b.db")
    nodes = [
        NodeRecord(node_id=f"n-{n}", node_type="cpu", status=Status.READY, created_at=1.0)
        for n in range(6)
    ]
    with ledger.transaction():
        ledger.save_nodes(nodes)
    claim(ledger, config_file=str(ec2.config("b")), cluster_name="b")
    set_carried(ledger, {"a": {r.node_id for r in nodes}})
    ledger.close()
    other = ec2.config("a", file="other.yaml")
    with pytest.raises(LedgerError) as refused:
        open_runtime(load_config(other), other, clock=ec2.clock)
    assert str(refused.value) == (
        f"cluster_name a is still the tag of 6 live node(s) that ledger {state / 'b.db'} "
        "(cluster b) carried over from it; a new cluster a would take their instances for "
        "strangers and terminate them: pick another cluster_name until they are gone"
    )
    assert not (state / "a.db").exists()


def test_carried_over_the_cluster_stays_tracked_scales_and_leaves_nothing_behind(
    ec2: EC2, daemons: list[Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    config = ec2.config("a")
    six = _cluster_of_six(ec2, config)
    ec2.config("b")
    result = _cli("ledger", "carry-over", config, "--from", "a")
    assert result.returncode == 0, result.stderr
    state = ec2.directory / ".steadyscale"
    assert f"carried cluster a over to b: ledger {state / 'a.db'} is now {state / 'b.db'}" in (
        result.stdout
    )
    assert "6 live node(s) keep the tag steadyscale:cluster=a" in result.stdout
    assert not (state / "a.db").exists()
    # status of the renamed config shows the carried nodes.
    assert main(["status", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["node_types"]["cpu"]["counts"]["ready"] == 6
    # The IAM policy lets the daemon terminate the instances that keep the old tag.
    assert main(["iam-policy", str(config)]) == 0
    policy = json.loads(capsys.readouterr().out)
    [terminate] = [s for s in policy["Statement"] if s["Action"] == "ec2:TerminateInstances"]
    assert terminate["Condition"]["StringEquals"] == {f"ec2:ResourceTag/{TAG_CLUSTER}": ["b", "a"]}

    daemon = Daemon(ec2, config)
    daemons.append(daemon)
    launches = ec2.calls("RunInstances")
    daemon.run(lambda: daemon.autoscaler.ticks >= 5)  # several full listings
    assert {r.instance_id for r in daemon.nodes(Status.READY)} == six
    assert ec2.calls("RunInstances") == launches
    # Scale up: new nodes carry the new name; no instance of the six is launched again.
    daemon.demand(8)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == 8)
    assert len(ec2.alive("b")) == 2 and {i.instance_id for i in ec2.alive("a")} == six
    assert len(ec2.launched()) == 8  # no duplicate
    # Scale down to zero: every instance terminated, whichever tag it carries (no leak).
    daemon.demand(0)
    daemon.run(lambda: not ec2.alive() and not daemon.ledger.nodes())
    # At the next full listing the former name is dropped: no longer listed.
    daemon.run(lambda: carried(daemon.ledger) == {}, max_ticks=2)


def test_a_carry_over_cut_short_before_its_ledger_moved_is_refused_until_finished(
    ec2: EC2, daemons: list[Daemon]
) -> None:
    config = ec2.config("a")
    six = _cluster_of_six(ec2, config)
    ec2.config("b")
    state = ec2.directory / ".steadyscale"
    # carry-over killed after its ledger says cluster b, before the file moves to b.db.
    ledger = Ledger(state / "a.db")
    claim(ledger, config_file=str(config.resolve()), cluster_name="b")
    ledger.close()
    with pytest.raises(LedgerError) as refused:
        open_runtime(load_config(config), config, clock=ec2.clock)
    assert str(refused.value) == (
        f"this config's ledger {state / 'a.db'} runs cluster b (6 live node(s)), but the "
        f"ledger of cluster b is {state / 'b.db'}: a carry-over was cut short; finish it "
        f"with: steadyscale ledger carry-over {config} --from a"
    )
    assert not (state / "b.db").exists()
    result = _cli("ledger", "carry-over", config, "--from", "a")
    assert result.returncode == 0, result.stderr
    daemon = Daemon(ec2, config)
    daemons.append(daemon)
    daemon.run(lambda: daemon.autoscaler.ticks >= 5)
    assert {r.instance_id for r in daemon.nodes(Status.READY)} == six


def test_carry_over_is_refused_while_a_daemon_runs_on_the_old_ledger(
    ec2: EC2, daemons: list[Daemon]
) -> None:
    config = ec2.config("a")
    daemon = Daemon(ec2, config)
    daemons.append(daemon)
    ec2.config("b")
    result = _cli("ledger", "carry-over", config, "--from", "a")
    assert result.returncode == 2
    old = ec2.directory / ".steadyscale" / "a.db"
    assert result.stderr.splitlines() == [
        f"steadyscale: error: another steadyscale daemon (pid {os.getpid()}) is running on "
        f"ledger {old}; stop it first, or give this one another ledger"
    ]
    assert old.exists() and not (ec2.directory / ".steadyscale" / "b.db").exists()


def test_a_launch_unanswered_when_carried_over_is_resent_under_its_first_tag(
    ec2_emulator_factory: EmulatorFactory,
    tmp_path: Path,
    credentials: None,
    daemons: list[Daemon],
) -> None:
    """RunInstances launched two instances tagged ``a`` but every answer was lost; after
    the carry-over the resend (same ClientToken) must carry ``a`` again, or EC2 refuses it
    as IdempotentParameterMismatch and the demand is launched a second time."""
    clock = FakeClock(1_000_000.0)
    slow = {"median": 60, "p99": 61, "max": 62}  # listings do not show them for a minute
    ec2 = EC2(
        ec2_emulator_factory("realistic", clock=clock, visibility=slow, **QUIET), clock, tmp_path
    )
    config = ec2.config("a")
    daemon = Daemon(ec2, config)
    daemon.demand(2)
    ec2.emulator.inject("lost_response", "RunInstances", count=3)  # every attempt
    daemon.autoscaler.tick()
    assert len(daemon.nodes(Status.REQUESTED)) == 2 and len(ec2.alive("a")) == 2
    daemon.close()
    ec2.config("b")
    assert main(["ledger", "carry-over", str(config), "--from", "a"]) == 0
    answered = ec2.emulator.calls.count("RunInstances", "ok")
    sent = ec2.calls("RunInstances")
    daemon = Daemon(ec2, config)
    daemons.append(daemon)
    daemon.run(lambda: len(daemon.nodes(Status.READY)) == 2)
    # The resend was answered (with the instances of the first attempt) and nothing refused.
    assert ec2.emulator.calls.count("RunInstances", "ok") == answered + 1
    assert ec2.calls("RunInstances") == sent + 1
    assert len(ec2.launched()) == 2  # the same two instances, not two more
    daemon.demand(0)
    daemon.run(lambda: not ec2.alive() and not daemon.ledger.nodes())


def test_status_of_a_renamed_config_names_the_old_ledger_and_the_ways_out(ec2: EC2) -> None:
    config = ec2.config("a")
    _cluster_of_six(ec2, config)
    ec2.config("b")
    result = _cli("status", config)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("steadyscale: error: cluster_name is now b, but this config's ledger")
    assert line.endswith(f"steadyscale ledger carry-over {config} --from a")
