"""Scenarios on a ``ReplicaCluster``: demand that rises and falls while the leader is hit,
and the failover benchmark's run (a demand schedule, the leader killed at given moments,
the capacity delivered sampled from ground truth).
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from steadyscale.testing.blows import disrupt
from steadyscale.testing.replica_verdict import ReplicaVerdict
from steadyscale.testing.replicas import POLL, Disruption, Disturbance, ReplicaCluster


@dataclass
class ScenarioResult:
    disturbances: list[Disturbance]
    verdict: ReplicaVerdict
    exit_codes: list[int | None]  # of the replicas still running at the end, stopped cleanly


def rise_and_fall(
    cluster: ReplicaCluster, *, nodes: int, blow: Disruption, takeover_timeout: float = 60.0
) -> ScenarioResult:
    """0 -> ``nodes`` with ``blow`` while the leader launches, down to a quarter with
    ``blow`` again while it terminates, back up to ``nodes`` and down to 0; each level
    awaited by ground truth, each takeover for at most ``takeover_timeout``."""
    cluster.start()
    hits: list[Disturbance] = []
    for level in (nodes, nodes // 4):
        since = len(cluster.mutation_records())
        cluster.set_demand(level)
        cluster.wait_acting(since)  # the blow falls in the middle of the leader's work
        hits.append(disrupt(cluster, blow, timeout=takeover_timeout))
        cluster.wait_capacity(level)
    cluster.set_demand(nodes)
    cluster.wait_capacity(nodes)
    cluster.set_demand(0)
    cluster.wait_terminated()
    codes = cluster.stop_replicas()
    return ScenarioResult(hits, cluster.verdict(), codes)


@dataclass(frozen=True)
class Step:
    at: float  # seconds into the schedule
    demand: int


def wave(nodes: int, seconds: float) -> list[Step]:
    """Demand rising and falling in steps over ``seconds``: up to ``nodes``, down to a
    third, up again, down to nothing."""
    shape = (0.25, 0.5, 0.75, 1.0, 0.66, 0.33, 0.66, 1.0, 0.5, 0.0)
    return [
        Step(at=round(seconds * i / len(shape), 3), demand=round(nodes * f))
        for i, f in enumerate(shape)
    ]


LEAD_IN = 3.0  # seconds of a schedule before the first kill may fall, and after the last


def kill_moments(kills: int, seconds: float, spacing: float, rng: random.Random) -> list[float]:
    """``kills`` moments in a schedule of ``seconds``, at least ``spacing`` apart and
    ``LEAD_IN`` from either end (plus a spacing after the last), drawn from ``rng``."""
    window = max(0.0, seconds - 2 * LEAD_IN - kills * spacing)
    offsets = sorted(rng.uniform(0, window) for _ in range(kills))
    return [round(LEAD_IN + o + i * spacing, 3) for i, o in enumerate(offsets)]


def demand_at(steps: Sequence[Step], t: float) -> int:
    current = 0
    for step in steps:
        if step.at <= t:
            current = step.demand
    return current


@dataclass
class CapacitySampler:
    """Samples how many cluster instances run (``count``, from ground truth) in a thread
    of its own: the capacity delivered (up to what the schedule asks) follows."""

    count: Callable[[], int]
    steps: Sequence[Step]
    every: float = 0.25
    samples: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capacity-sampler", daemon=True)
        self.start = time.monotonic()

    def begin(self) -> CapacitySampler:
        self.start = time.monotonic()
        self._thread.start()
        return self

    def end(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic() - self.start
            # The emulator busy past the timeout: a gap in the samples, not a zero.
            with contextlib.suppress(OSError):
                self.samples.append((at, self.count()))
            self._stop.wait(self.every)

    def delivered(self, until: float) -> float:
        """Seconds x instances running, each moment capped at the schedule's demand."""
        return sum(min(running, demand) * dt for running, demand, dt in self._spans(until))

    def beyond_demand(self, until: float) -> float:
        """Seconds x instances running beyond the schedule's demand of the moment."""
        return sum(max(0, running - demand) * dt for running, demand, dt in self._spans(until))

    def _spans(self, until: float) -> list[tuple[int, int, float]]:
        """(running, demand, seconds) of each sample until the next one (or ``until``)."""
        spans: list[tuple[int, int, float]] = []
        ends = [t for t, _ in self.samples[1:]] + [until]
        for (t, running), t_next in zip(self.samples, ends, strict=True):
            if t >= until:
                break
            spans.append((running, demand_at(self.steps, t), min(t_next, until) - t))
        return spans


@dataclass
class ScheduleRun:
    takeovers: list[float]
    delivered: float  # capacity-seconds delivered during the schedule
    beyond_demand: float  # instance-seconds running beyond the demand of the moment
    verdict: ReplicaVerdict
    kills: int


def run_schedule(
    cluster: ReplicaCluster, steps: Sequence[Step], kills_at: Sequence[float], seconds: float
) -> ScheduleRun:
    """Follow ``steps`` (in a thread, so a takeover never delays demand) and SIGKILL the
    leader at each of ``kills_at``; then demand 0 until every instance ended."""
    cluster.start()
    sampler = CapacitySampler(cluster.running_count, steps).begin()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            for step in steps:
                _sleep_until(sampler.start + step.at)
                cluster.set_demand(step.demand)
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    demand = threading.Thread(target=follow, name="demand-schedule", daemon=True)
    demand.start()
    takeovers: list[float] = []
    for at in kills_at:
        _sleep_until(sampler.start + at)
        takeovers.append(disrupt(cluster, Disruption.KILL).takeover_s)
    demand.join(timeout=seconds + 120)
    _sleep_until(sampler.start + seconds)
    sampler.end()
    if errors:
        raise errors[0]
    cluster.set_demand(0)
    cluster.wait_terminated(timeout=300)
    cluster.stop_replicas()
    return ScheduleRun(
        takeovers=takeovers,
        delivered=sampler.delivered(seconds),
        beyond_demand=sampler.beyond_demand(seconds),
        verdict=cluster.verdict(),
        kills=len(takeovers),
    )


def _sleep_until(moment: float) -> None:
    """The schedule's pace (not a wait for a condition: the schedule is the scenario)."""
    while (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, POLL * 4))
