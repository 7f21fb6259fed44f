"""Kill the daemon at random moments and check, from EC2's ground truth, what survived.

An emulator runs as its own process (so it outlives every daemon); daemons run as
``steadyscale run`` subprocesses against it and are SIGKILLed either after a random number
of their API calls or at a named crash point (after the intent is written, after
RunInstances answered but before the ids are recorded, during terminate). At the end one
daemon runs to quiescence, and the emulator's ground truth says whether any instance was
launched twice, left running, or never recorded.

Waiting is always for a condition (a printed line, a count of calls, the ground truth),
with a time limit, never for a fixed time.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.core.resources import DemandItem
from steadyscale.store.ledger import Ledger
from steadyscale.testing.audit import audit_truth
from steadyscale.testing.crashpoints import ENV as CRASH_ENV
from steadyscale.testing.crashpoints import POINTS
from steadyscale.testing.waiting import wait_for

CLUSTER = "chaos"
POLL = 0.02


class ChaosError(RuntimeError):
    pass


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    return wait_for(condition, timeout, what, error=ChaosError, poll=POLL)


class ExternalEmulator:
    """``steadyscale emulator`` in its own process, on a free loopback port."""

    def __init__(
        self, *, profile: str, seed: int, time_scale: float, assignments: list[str] | None = None
    ) -> None:
        args = [sys.executable, "-m", "steadyscale", "emulator", "--profile", profile]
        args += ["--seed", str(seed), "--time-scale", str(time_scale), "--port", "0"]
        for assignment in assignments or []:
            args += ["--set", assignment]
        # Its log goes to a file: a pipe nobody reads would fill and stall it.
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving EC2 at " not in line:
            self.stop()
            self._log.seek(0)
            raise ChaosError(f"the emulator did not start: {line!r} {self._log.read()[-800:]}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/_steadyscale/{path}", timeout=30) as answer:
            return json.loads(answer.read())

    def truth(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get("truth?include_gone=1")["instances"]
        return [i for i in found if i["tags"].get(TAG_CLUSTER) == CLUSTER]

    def call_count(self) -> int:
        return int(self._get("calls?limit=0")["total"])

    def calls(self) -> dict[str, dict[str, int]]:
        by_action: dict[str, dict[str, int]] = self._get("calls?limit=0")["by_action"]
        return by_action

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
        self._log.close()


def write_config(directory: Path, endpoint: str, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "cluster_name": CLUSTER,
        "max_workers": 2000,
        "upscaling_speed": 1000,
        "idle_timeout_minutes": 0,
        "loop_interval_seconds": 0.5,
        "listing_interval_seconds": 2,
        "visibility_timeout_seconds": 120,
        "gc_grace_seconds": 60,
        "provider": {
            "type": "aws",
            "region": "us-east-1",
            "endpoint_url": endpoint,
            "max_attempts": 3,
            "read_timeout_seconds": 10,
        },
        "available_node_types": {
            "worker": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 2000,
            },
        },
    }
    data.update(overrides)
    path = directory / "chaos.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def set_demand(ledger_path: Path, count: int) -> None:
    ledger = Ledger(ledger_path)
    try:
        items = [DemandItem(bundle={"CPU": 2}, count=count)] if count else []
        ledger.set_demand(items, time.time())
    finally:
        ledger.close()


def daemon_env(crash_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if crash_at:
        env[CRASH_ENV] = crash_at
    return env


def daemon_log(config: Path) -> Path:
    """Where every daemon of a run appends its log (each state change, at info)."""
    return config.parent / "daemons.log"


def start_daemon(config: Path, crash_at: str | None = None) -> subprocess.Popen[str]:
    # The log goes to a file, never a pipe: one nobody reads until the daemon ends fills
    # up and blocks the daemon in a write (hundreds of nodes log more than a pipe holds).
    with daemon_log(config).open("a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "steadyscale", "run", str(config), "--quiet", "--json"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=daemon_env(crash_at),
        )


def _startup_listings(ledger_path: Path) -> int:
    """A daemon on a ledger without records lists the cluster once before its first tick
    (a new ledger must not face a live cluster it cannot explain): that call is left out
    of a kill's budget, so kills land where they did."""
    ledger = Ledger(ledger_path, readonly=True)
    try:
        return 1 if ledger.is_empty() else 0
    finally:
        ledger.close()


def _log_tail(config: Path) -> str:
    return daemon_log(config).read_text()[-800:]


@dataclass
class Verdict:
    launched: int  # distinct cluster instances EC2 ever had
    demanded: int
    duplicates: int  # instances beyond what their launch request asked, or never recorded
    leaks: int  # cluster instances not terminated at the end
    unrecorded: list[str] = field(default_factory=list)
    by_fleet: int = 0  # of the instances, those a CreateFleet launched


def verdict(emulator: ExternalEmulator, ledger_path: Path, demanded: int) -> Verdict:
    truth = emulator.truth()
    over, unrecorded = audit_truth(ledger_path, truth)
    return Verdict(
        launched=len(truth),
        demanded=demanded,
        duplicates=over + max(0, len(truth) - demanded),
        leaks=sum(1 for i in truth if i["state"] != "terminated"),
        unrecorded=unrecorded,
        by_fleet=sum(1 for i in truth if i.get("fleet_id")),
    )


@dataclass
class ChaosRun:
    kills: int
    crash_points_hit: dict[str, int]
    seconds: float
    verdict: Verdict
    final_summary: dict[str, Any]
    settle_seconds: float = 0.0  # the undisturbed daemons' time to finish each phase


def _settle(
    config: Path, emulator: ExternalEmulator, done: Any, timeout: float, what: str
) -> dict[str, Any]:
    """Run one daemon, undisturbed, until ``done(truth)``; stop it cleanly."""
    before = emulator.call_count()
    daemon = start_daemon(config)
    try:
        # At least one tick of its own (and its signal handlers in place) before judging.
        _wait_for(
            lambda: daemon.poll() is not None or emulator.call_count() - before >= 2,
            60,
            "the daemon's first tick",
        )
        _wait_for(lambda: done(emulator.truth()), timeout, what)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    if daemon.returncode != 0:
        raise ChaosError(f"a daemon failed ({daemon.returncode}): {_log_tail(config)}")
    lines = out.strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    return summary


@dataclass
class _Killer:
    """Starts daemons while demand moves in steps and SIGKILLs each one: at a named crash
    point, or after a random number of its API calls."""

    emulator: ExternalEmulator
    config: Path
    ledger_path: Path
    nodes: int
    rng: random.Random
    forced_point: str | None = None
    per_kill_timeout: float = 10.0
    points: dict[str, int] = field(default_factory=dict)

    @classmethod
    def in_workdir(
        cls,
        workdir: Path,
        emulator: ExternalEmulator,
        nodes: int,
        rng: random.Random,
        overrides: dict[str, Any],
    ) -> _Killer:
        """Daemons of a config in ``workdir`` (its ledger beside it) on ``emulator``."""
        ledger_path = workdir / ".steadyscale" / f"{CLUSTER}.db"
        ledger_path.parent.mkdir(parents=True, exist_ok=True)
        config = write_config(workdir, emulator.url, **overrides)
        return cls(emulator, config, ledger_path, nodes, rng)

    def cycle(self, count: int, *, scaling_up: bool) -> None:
        for step in range(count):
            # Demand moves in steps, so every daemon has launches (or terminations) to make
            # and dies in the middle of them.
            share = (step + 1) / count
            wanted = round(self.nodes * share) if scaling_up else round(self.nodes * (1 - share))
            set_demand(self.ledger_path, wanted)
            # A daemon sent to a boundary this phase reaches is given the time to reach it
            # (a fleet's first launch comes after its launch template's calls).
            patient = self.forced_point in _phase_points(scaling_up)
            self._kill_one(self._crash_point(scaling_up), patient=patient)

    def settle(
        self, demand: int, done: Any, timeout: float, what: str
    ) -> tuple[dict[str, Any], float]:
        """Set the demand and let one undisturbed daemon finish the phase: (its summary,
        seconds it took)."""
        set_demand(self.ledger_path, demand)
        started = time.monotonic()
        summary = _settle(self.config, self.emulator, done, timeout, what)
        return summary, time.monotonic() - started

    def _crash_point(self, scaling_up: bool) -> str | None:
        if self.forced_point is not None:
            return f"{self.forced_point}:1"
        if self.rng.random() >= 0.5:
            return None
        phase = _phase_points(scaling_up)
        return f"{self.rng.choice(phase)}:{self.rng.randint(1, 2)}"

    def _kill_one(self, crash_at: str | None, *, patient: bool = False) -> None:
        before = self.emulator.call_count()
        daemon = start_daemon(self.config, crash_at)
        budget = self.rng.randint(1, 8) + _startup_listings(self.ledger_path)
        if patient:
            budget = 10**9  # killed at its crash point (or past per_kill_timeout)
        # A quiet daemon makes few calls: past the limit it is killed where it is.
        with contextlib.suppress(ChaosError):
            _wait_for(
                lambda: daemon.poll() is not None or self.emulator.call_count() - before >= budget,
                self.per_kill_timeout,
                "the daemon's API calls",
            )
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGKILL)
            hit = "random"
        else:
            hit = (crash_at or "").partition(":")[0] or "exit"
        self.points[hit] = self.points.get(hit, 0) + 1
        daemon.communicate(timeout=30)
        if daemon.returncode != -signal.SIGKILL:
            raise ChaosError(
                f"a daemon ended by itself ({daemon.returncode}): {_log_tail(self.config)}"
            )


def _phase_points(scaling_up: bool) -> list[str]:
    """The boundaries a phase reaches: launches going up, terminates going down."""
    return [p for p in POINTS if p.startswith(("launch", "intent") if scaling_up else "term")]


def _emulator_for(
    *, profile: str, emulator_seed: int, time_scale: float, quiet_errors: bool
) -> ExternalEmulator:
    assignments = ["spot.interruption_rate_per_hour=0"]
    if quiet_errors:
        assignments += [
            "errors.server_error_probability=0",
            "errors.lost_response_probability=0",
            "errors.timeout_probability=0",
        ]
    return ExternalEmulator(
        profile=profile, seed=emulator_seed, time_scale=time_scale, assignments=assignments
    )


def run_chaos(
    workdir: Path,
    *,
    nodes: int,
    kills: int,
    seed: int,
    profile: str = "realistic",
    time_scale: float = 0.05,
    emulator_seed: int = 1,
    quiet_errors: bool = False,
    timeout: float = 600.0,
    forced_point: str | None = None,
    per_kill_timeout: float = 10.0,
    node_types: dict[str, Any] | None = None,
) -> ChaosRun:
    """Scale 0 -> ``nodes`` -> 0, SIGKILLing the daemon ``kills`` times: half while it
    scales up, half while it scales down. Each phase then finishes with one undisturbed
    daemon, so ``kills=0`` is the same run without kills. ``node_types`` replaces the
    config's single ``worker`` type (its bundles are {CPU: 2})."""
    emulator = _emulator_for(
        profile=profile,
        emulator_seed=emulator_seed,
        time_scale=time_scale,
        quiet_errors=quiet_errors,
    )
    started = time.monotonic()
    try:
        overrides = {} if node_types is None else {"available_node_types": node_types}
        killer = _Killer.in_workdir(workdir, emulator, nodes, random.Random(seed), overrides)
        killer.forced_point, killer.per_kill_timeout = forced_point, per_kill_timeout
        killer.cycle(kills // 2, scaling_up=True)
        _, up = killer.settle(
            nodes,
            lambda truth: sum(i["state"] == "running" for i in truth) >= nodes,
            timeout,
            f"{nodes} running instances",
        )
        killer.cycle(kills - kills // 2, scaling_up=False)
        summary, down = killer.settle(
            0,
            lambda truth: not any(i["state"] != "terminated" for i in truth),
            timeout,
            "every cluster instance to terminate",
        )
        return ChaosRun(
            kills=kills,
            crash_points_hit=killer.points,
            seconds=time.monotonic() - started,
            verdict=verdict(emulator, killer.ledger_path, nodes),
            final_summary=summary,
            settle_seconds=up + down,
        )
    finally:
        emulator.stop()
