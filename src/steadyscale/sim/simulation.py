"""The simulator: the real autoscaler, reconciler, scheduler and ledger against the in-memory
EC2 backend on a virtual clock, driven by a demand trace, summed up in a report.

Time is a ``FakeClock`` that moves by the loop interval after each tick (and by whatever
the SDK-like retries sleep), so an hour of EC2 lag takes seconds and nothing ever sleeps.
Everything random comes from the seed: the same config, trace and seed give the same
report.
"""

from __future__ import annotations

import contextlib
import gc
import random
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.core.lifecycle import HAS_INSTANCE, TERMINAL, UP, Status
from steadyscale.ec2model.calllog import CallLog
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.ec2model.settings import EmulatorSettings, build_settings
from steadyscale.loop.autoscaler import Autoscaler, TickReport
from steadyscale.ops.health import HealthChecker
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider
from steadyscale.retries.clock import Clock, FakeClock
from steadyscale.sim.report import (
    Sample,
    SimulationReport,
    SimulationResult,
    audit_fleet,
    capacity_after_each_rise,
    cost_of,
    node_hours,
    pool_priced_cost,
    throttles,
)
from steadyscale.sim.traces import Trace
from steadyscale.store.ledger import Ledger

# The virtual clock starts here, an arbitrary moment far from zero like an epoch reading.
START = 1_000_000.0


class ModelProvider(CloudProvider, Protocol):
    """The provider a simulation runs on: EC2's API over the in-process EC2 model, whose
    ground truth and call log the report reads, and whose faults a test may inject (the
    memory backend is one)."""

    @property
    def calls(self) -> CallLog: ...

    def truth(self, *, include_gone: bool = True) -> list[TrackedInstance]: ...

    def inject(self, fault: Fault | str, action: str = "*", count: int = 1) -> None: ...


@dataclass(frozen=True)
class Assembly:
    """What the app assembles for a simulation on its clock and model settings: the
    provider over the EC2 model, and the metrics and health checker the autoscaler reports
    to (``runtime.assemble_simulation``, so that the simulator and ``run`` with
    ``provider.type: memory`` build the memory backend alike)."""

    provider: ModelProvider
    metrics: Metrics
    health: HealthChecker


Assemble = Callable[[ClusterConfig, Clock, EmulatorSettings], Assembly]


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run Python's cyclic garbage collector far less often meanwhile.

    Ten thousand live records make every full collection long (100 ms and more), and a
    tick allocates enough objects to start several; nearly all of them are freed by
    reference counting anyway.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _seeded_ids(seed: int) -> Callable[[str], str]:
    rng = random.Random(f"{seed}/ledger-ids")

    def new_id(prefix: str) -> str:
        return f"{prefix}-{rng.getrandbits(80):020x}"

    return new_id


class Simulation:
    """One run: a config, a trace, a seed and a duration."""

    def __init__(
        self,
        config: ClusterConfig,
        trace: Trace,
        *,
        seed: int,
        duration: float,
        assemble: Assemble,
        ledger_path: Path | None = None,
        prices: Mapping[str, float] | None = None,
        profile: str | None = None,
    ) -> None:
        self.config = config
        self.trace = trace
        self.seed = seed
        self.duration = duration
        self.prices = dict(config.prices)
        self.prices.update(prices or {})
        overrides = dict(config.provider.emulator)
        overrides["seed"] = seed
        if profile is not None:
            overrides["profile"] = profile
        self.settings = build_settings(overrides=overrides)
        self.clock = FakeClock(START)
        parts = assemble(config, self.clock, self.settings)
        self.provider = parts.provider
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if ledger_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steadyscale-sim-")
            ledger_path = Path(self._tmp.name) / "ledger.db"
        elif ledger_path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
        self.ledger = Ledger(ledger_path)
        self.autoscaler = Autoscaler(
            config,
            self.provider,
            self.ledger,
            self.clock,
            metrics=parts.metrics,
            health=parts.health,
            new_ids=_seeded_ids(seed),
        )

    def close(self) -> None:
        self.ledger.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def run(self, progress: Callable[[float], None] | None = None) -> SimulationResult:
        """Tick until the duration has passed; ``progress`` gets the virtual seconds done."""
        with fewer_collections():
            return self._run(progress)

    def _run(self, progress: Callable[[float], None] | None) -> SimulationResult:
        clock = self.clock
        steps = list(self.trace.steps)
        samples: list[Sample] = []
        reports: list[TickReport] = []
        next_step = 0
        demand = 0
        end = START + self.duration
        while clock.now() < end:
            elapsed = clock.now() - START
            while next_step < len(steps) and steps[next_step].at <= elapsed:
                self.ledger.set_demand(steps[next_step].demand, clock.now())
                demand = steps[next_step].bundles
                next_step += 1
            started = clock.now()
            report = self.autoscaler.tick()
            reports.append(report)
            samples.append(Sample(at=started - START, demand=demand, counts=report.counts))
            if progress is not None:
                progress(min(self.duration, clock.now() - START))
            wait = self.config.loop_interval_seconds - (clock.now() - started)
            if wait > 0:
                clock.advance(wait)
        calls = [(r.at - START, r.action) for r in self.provider.calls.records()]
        return SimulationResult(
            report=self._report(samples, reports), samples=samples, calls=calls, ticks=len(reports)
        )

    def _report(self, samples: Sequence[Sample], reports: Sequence[TickReport]) -> SimulationReport:
        truth = [
            i
            for i in self.provider.truth(include_gone=True)
            if i.tags.get(TAG_CLUSTER) == self.config.cluster_name
        ]
        hours = node_hours(truth, end=self.clock.now())
        tracked = {
            r.instance_id
            for r in self.autoscaler.records.values()
            if r.instance_id and r.status in HAS_INSTANCE
        }
        fleet = audit_fleet(self.ledger, truth, tracked)
        by_action = self.provider.calls.by_action()
        rises = capacity_after_each_rise(samples, reports)
        final = reports[-1].counts if reports else {}
        return SimulationReport(
            trace=self.trace.name,
            seed=self.seed,
            model_profile=self.settings.profile,
            duration_seconds=self.duration,
            ticks=len(reports),
            time_to_capacity_seconds=rises[0].seconds if rises else None,
            capacity_after_each_rise=rises,
            peak_demand=max((s.demand for s in samples), default=0),
            peak_running=max(
                (sum(s.counts.get(u.value, 0) for u in UP) for s in samples), default=0
            ),
            instances_launched=len(truth),
            node_hours_by_instance_type={t: round(h, 4) for t, h in sorted(hours.items())},
            node_hours_total=round(sum(hours.values()), 4),
            cost=cost_of(hours, self.prices),
            cost_at_pool_prices=pool_priced_cost(truth, end=self.clock.now()),
            api_calls_by_action={a: sum(o.values()) for a, o in by_action.items()},
            api_calls_by_outcome=by_action,
            api_calls_total=sum(sum(o.values()) for o in by_action.values()),
            throttles=throttles(by_action),
            duplicates=fleet.duplicates,
            leaks=fleet.leaks,
            awaiting_adoption=fleet.awaiting_adoption,
            alive_at_end=fleet.alive,
            stuck_ticks=sum(1 for r in reports if r.duration > self.config.max_tick_seconds),
            tick_errors=sum(len(r.errors) for r in reports),
            final_nodes={k: v for k, v in sorted(final.items()) if Status(k) not in TERMINAL},
        )
