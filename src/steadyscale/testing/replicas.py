"""Several ``steadyscale run`` replicas on one ledger against an emulator process, judged
by ground truth.

``ReplicaCluster`` starts an emulator (``steadyscale emulator``, its delays shrunk by a time
scale), writes a config whose ledger is a PostgreSQL database (or a SQLite file, for one
replica) with short ``ha:`` timings, and starts N replicas. It finds the leader through
each replica's ``steadyscale_leader`` gauge, sets demand with ``steadyscale request``, and
waits for the cluster to reach a capacity by the emulator's ground truth. ``testing.blows``
hurts the leader; the verdict (``testing.replica_verdict``) comes from the emulator: its
ground truth (duplicates, leaks) and its call log (no two replicas acting in the same
instant, ``testing.acting``).

Waiting is always for a condition with a deadline, never for a fixed time.
"""

from __future__ import annotations

import enum
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.testing import waiting
from steadyscale.testing.chaos import ExternalEmulator, daemon_env, write_config
from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.replica_process import Replica
from steadyscale.testing.replica_verdict import ReplicaVerdict, judge

CLUSTER = "replicas"
POLL = 0.05
T = TypeVar("T")


class ReplicaError(RuntimeError):
    """The cluster did not do what a scenario waited for, in time."""


class TakeoverHeldBackError(ReplicaError):
    """No replica took over from a stopped leader that still has a ledger transaction open
    (its fence's lock on the lease row with it)."""


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it gives something truthy; ReplicaError past ``timeout``."""
    return waiting.wait_for(condition, timeout, what, error=ReplicaError, poll=POLL)


@dataclass(frozen=True)
class Timings:
    """The replicas' ``ha:`` section and loop interval, short so that tests are quick."""

    lease_ttl_seconds: float = 3.0
    renew_interval_seconds: float = 1.0
    margin_seconds: float = 1.0
    interval_seconds: float = 0.5

    @property
    def takeover_bound(self) -> float:
        """The longest a takeover may take: the lease TTL plus one loop interval."""
        return self.lease_ttl_seconds + self.interval_seconds

    def ha(self) -> dict[str, float]:
        return {
            "lease_ttl_seconds": self.lease_ttl_seconds,
            "renew_interval_seconds": self.renew_interval_seconds,
            "margin_seconds": self.margin_seconds,
        }


class Disruption(enum.Enum):
    KILL = "kill"  # SIGKILL the leader; a fresh replica replaces it
    PAUSE = "pause"  # SIGSTOP the leader until another leads, then SIGCONT
    # The same, the leader stopped inside a ledger write transaction (PostgreSQL only):
    # its fence's row lock on the lease stays held while it is stopped.
    PAUSE_MID_WRITE = "pause-mid-write"
    CUT = "cut"  # terminate the leader's database connections (PostgreSQL only)
    RESTART_DB = "restart-db"  # restart the PostgreSQL server under every replica


@dataclass(frozen=True)
class Disturbance:
    kind: Disruption
    hit: str  # the replica that led when the blow fell
    leader_after: str
    takeover_s: float  # from the blow until one replica (maybe the same) leads again


@dataclass
class ReplicaCluster:
    """An emulator, a ledger and ``replicas`` daemons on it. Use as a context manager."""

    workdir: Path
    replicas: int = 2
    postgres: PostgresServer | None = None
    timings: Timings = field(default_factory=Timings)
    time_scale: float = 0.05
    seed: int = 1
    profile: str = "realistic"
    running: list[Replica] = field(default_factory=list)
    gone: list[Replica] = field(default_factory=list)  # killed by the scenario, or stopped
    excess_at_capacity: int = 0
    demand: int = 0

    def __post_init__(self) -> None:
        self.emulator = ExternalEmulator(
            profile=self.profile,
            seed=self.seed,
            time_scale=self.time_scale,
            assignments=["spot.interruption_rate_per_hour=0"],
        )
        self._started = 0
        try:
            self.database, self.ledger = self._ledger_location()
            overrides: dict[str, Any] = {
                "cluster_name": CLUSTER,
                "loop_interval_seconds": self.timings.interval_seconds,
                "ledger": self.ledger,
            }
            if self.postgres is not None:
                overrides["ha"] = self.timings.ha()
            self.config = write_config(self.workdir, self.emulator.url, **overrides)
        except BaseException:
            self.emulator.stop()
            raise

    def _ledger_location(self) -> tuple[str, str]:
        if self.postgres is None:
            path = self.workdir / ".steadyscale" / f"{CLUSTER}.db"
            return "", str(path.resolve())
        name = f"ha{uuid.uuid4().hex[:12]}"
        return name, self.postgres.create_database(name)

    def __enter__(self) -> ReplicaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ replicas

    def start(self, timeout: float = 60.0) -> Replica:
        """Start the replicas; the one that leads once they all serve metrics."""
        for _ in range(self.replicas):
            self.add_replica()
        wait_for(
            lambda: all(r.gauges() is not None for r in self.running) or self._dead(),
            timeout,
            "every replica to serve its metrics",
        )
        return self.wait_leader(timeout)

    def add_replica(self) -> Replica:
        self._started += 1
        replica = Replica(f"r{self._started}", self.config, self.workdir)
        self.running.append(replica)
        return replica

    def leaders(self) -> list[Replica]:
        return [r for r in self.running if r.leads()]

    def wait_leader(self, timeout: float, excluding: tuple[Replica, ...] = ()) -> Replica:
        """The one replica that leads (none of ``excluding``), once exactly one does."""

        def one() -> Replica | None:
            self._dead()
            found = self.leaders()
            return found[0] if len(found) == 1 and found[0] not in excluding else None

        try:
            return wait_for(one, timeout, "exactly one replica to lead")
        except ReplicaError as exc:
            raise ReplicaError(f"{exc}; {self.describe()}") from None

    def describe(self) -> str:
        """Each replica's view of its leadership, and the end of its log."""
        return "; ".join(
            f"{r.replica_id} leads={r.leads()} paused={r.paused}: ...{r.log_tail(400)}"
            for r in self.running
        )

    def _dead(self) -> bool:
        """Raise if a replica the scenario did not kill has ended."""
        for replica in self.running:
            if not replica.alive():
                raise ReplicaError(
                    f"{replica.replica_id} ended by itself ({replica.proc.returncode}): "
                    f"{replica.log_tail()}"
                )
        return False

    # ------------------------------------------------------------------ demand, EC2

    def set_demand(self, count: int) -> None:
        """``steadyscale request CONFIG``: ``count`` bundles of 2 CPUs, or none."""
        args = ["--bundle", "CPU=2", "--count", str(count)] if count else ["--clear"]
        result = subprocess.run(
            [sys.executable, "-m", "steadyscale", "request", str(self.config), *args],
            capture_output=True,
            text=True,
            env=daemon_env(),
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise ReplicaError(f"steadyscale request failed: {result.stderr.strip()}")
        self.demand = count

    def _control(self, path: str) -> Any:
        url = f"{self.emulator.url}/_steadyscale/{path}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())

    def truth(self, *, include_gone: bool = True) -> list[dict[str, Any]]:
        """The cluster's instances as they really are (the ones gone too, unless told)."""
        found: list[dict[str, Any]] = self._control(f"truth?include_gone={int(include_gone)}")[
            "instances"
        ]
        return [i for i in found if i["tags"].get(TAG_CLUSTER) == CLUSTER]

    def mutation_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._control("calls?mutations=1&limit=10000000")["records"]
        return records

    def wait_acting(self, since: int, timeout: float = 30.0) -> None:
        """Until the log holds more than ``since`` mutations: the leader is acting."""
        wait_for(lambda: len(self.mutation_records()) > since, timeout, "the leader to act on EC2")

    def running_count(self) -> int:
        return sum(1 for i in self.truth(include_gone=False) if _serving(i))

    def wait_capacity(self, count: int, timeout: float = 120.0) -> float:
        """Until ``count`` cluster instances run and no more are wanted (launched, not
        asked to terminate); seconds it took. If more stay wanted once ``count`` run, the
        surplus counts as duplicates in the verdict."""
        started = time.monotonic()
        last = (0, 0)  # (running, wanted) at the last look

        def reached() -> bool:
            nonlocal last
            self._dead()
            wanted = [i for i in self.truth() if _wanted(i)]
            last = (sum(1 for i in wanted if _serving(i)), len(wanted))
            return last[0] >= count and last[1] == count

        try:
            wait_for(reached, timeout, f"{count} running cluster instances")
        except ReplicaError:
            if last[0] < count:
                raise ReplicaError(
                    f"timed out after {timeout:.0f}s waiting for {count} running cluster "
                    f"instances: {last[0]} run"
                ) from None
            self.excess_at_capacity += last[1] - count
        return time.monotonic() - started

    def wait_terminated(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        wait_for(
            lambda: not any(i["state"] != "terminated" for i in self.truth()),
            timeout,
            "every cluster instance to terminate",
        )
        return time.monotonic() - started

    # ------------------------------------------------------------------ verdict

    def stop_replicas(self) -> list[int | None]:
        """Stop every replica cleanly; their exit codes."""
        codes = [r.stop() for r in self.running]
        self.gone += self.running
        self.running = []
        return codes

    def verdict(self) -> ReplicaVerdict:
        """Ground truth against the ledger, and the call log's terms."""
        return judge(
            self.truth(),
            self.ledger,
            self.mutation_records(),
            excess=self.excess_at_capacity,
            handover_floor=self.handover_floor,
        )

    @property
    def handover_floor(self) -> float | None:
        """Half the margin, in the emulator's seconds: the quietest a handover between
        replicas on a lease may be (``testing.acting``), with room for the travel time of
        the ex-leader's last request. None on SQLite (one daemon, no handover)."""
        if self.postgres is None:
            return None
        return self.timings.margin_seconds / 2 / self.time_scale

    def close(self) -> None:
        try:
            for replica in self.running + self.gone:
                replica.stop()
        finally:
            self.emulator.stop()


def _wanted(instance: dict[str, Any]) -> bool:
    """Launched and never asked to terminate (by us or anyone)."""
    return instance["terminate_requested_at"] is None and instance["state"] in (
        "pending",
        "running",
    )


def _serving(instance: dict[str, Any]) -> bool:
    return instance["state"] == "running" and instance["terminate_requested_at"] is None
