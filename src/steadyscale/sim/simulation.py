"""The simulator: the real autoscaler, reconciler, scheduler and ledger against the in-memory
EC2 backend on a virtual clock, driven by a demand trace, summed up in a report.

Time is a ``FakeClock`` that moves by the loop interval after each tick (and by whatever
the SDK-like retries sleep), so an hour of EC2 lag takes seconds and nothing ever sleeps.
Everything random comes from the seed: the same config, trace and seed give the same
report.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import math
import random
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from steadyscale.app.runtime import (
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import HAS_INSTANCE, TERMINAL, UP, Status
from steadyscale.core.resources import DemandItem, fits, format_bundle, parse_amounts
from steadyscale.ec2model.settings import build_settings
from steadyscale.errors import ConfigError
from steadyscale.loop.autoscaler import Autoscaler, TickReport
from steadyscale.providers.memory import MemoryProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger
from steadyscale.testing.audit import audit

BUILTIN_TRACES = ("burst", "diurnal", "spiky")
# The virtual clock starts here, an arbitrary moment far from zero like an epoch reading.
START = 1_000_000.0
# Statuses drawn on the plot, bottom to top.
PLOTTED = (
    Status.READY,
    Status.RUNNING,
    Status.PENDING,
    Status.LAUNCHED,
    Status.REQUESTED,
    Status.TERMINATING,
)


@dataclass(frozen=True)
class TraceStep:
    """From ``at`` seconds after the start, the demand is ``demand`` (until the next step)."""

    at: float
    demand: tuple[DemandItem, ...]

    @property
    def bundles(self) -> int:
        return sum(item.count for item in self.demand)


@dataclass(frozen=True)
class Trace:
    name: str
    steps: tuple[TraceStep, ...]


def parse_duration(text: str) -> float:
    """Seconds from ``3600``, ``3600s``, ``90m`` or ``1.5h``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"--duration {text!r}: give a positive time such as 3600, 90m or 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def _step(at: float, bundle: Mapping[str, float], count: int) -> TraceStep:
    items = (DemandItem(bundle=dict(bundle), count=count),) if count > 0 else ()
    return TraceStep(at=at, demand=items)


def builtin_trace(
    name: str, *, peak: int, duration: float, bundle: Mapping[str, float], seed: int
) -> Trace:
    """``burst``: 0 -> peak at once, back to 0 at half time. ``diurnal``: a day's curve
    squeezed into the duration (night low, midday peak), in 24 steps. ``spiky``: a tenth
    of the peak with seeded spikes to the peak lasting a few minutes."""
    if name == "burst":
        steps = [_step(0.0, bundle, peak), _step(duration / 2, bundle, 0)]
    elif name == "diurnal":
        steps = []
        for hour in range(24):
            level = 0.5 - 0.5 * math.cos(2 * math.pi * hour / 24)
            steps.append(_step(duration * hour / 24, bundle, round(peak * level)))
    elif name == "spiky":
        rng = random.Random(f"{seed}/spiky")
        base = max(1, peak // 10)
        steps = [_step(0.0, bundle, base)]
        at = rng.uniform(60, 600)
        while at < duration:
            length = rng.uniform(120, 300)
            steps.append(_step(at, bundle, peak))
            steps.append(_step(at + length, bundle, base))
            at += length + rng.uniform(300, 900)
    else:
        raise ConfigError(
            f"unknown trace {name!r}; use {', '.join(BUILTIN_TRACES)} or a "
            "CSV/YAML file of time, bundle, count"
        )
    return Trace(name=name, steps=tuple(steps))


def _bundle_text(text: str, where: str) -> dict[str, float]:
    try:
        return parse_amounts(text, separators=";,")
    except ValueError as exc:
        raise ConfigError(
            f"{where}: bundle {text!r}: write NAME=AMOUNT pairs, e.g. CPU=4;GPU=1 (not {exc})"
        ) from None


def load_trace(path: str | Path) -> Trace:
    """A trace file: rows of (time in seconds, bundle, count). Rows at the same time add up;
    each time replaces the whole demand. CSV: ``time,bundle,count`` with bundles written
    ``CPU=4;GPU=1``. YAML: a list of ``{time: 0, bundle: {CPU: 4}, count: 10}``."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read trace {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"trace {source} is not UTF-8 text; give a CSV or YAML file of time, bundle, count"
        ) from None
    rows: list[tuple[float, dict[str, float], int, str]] = []
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or not {"time", "bundle", "count"} <= set(reader.fieldnames):
            raise ConfigError(f"{source}: the CSV header must be time,bundle,count")
        for line, row in enumerate(reader, start=2):
            where = f"{source}:{line}"
            try:
                at, count = float(row["time"]), int(row["count"])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: time must be a number and count an integer") from None
            rows.append((at, _bundle_text(row["bundle"] or "", where), count, where))
    else:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{source}: malformed YAML") from None
        if not isinstance(raw, list):
            raise ConfigError(
                f"{source}: expected a list of {{time, bundle, count}} (or a .csv file)"
            )
        for index, entry in enumerate(raw):
            where = f"{source}: [{index}]"
            if not isinstance(entry, dict) or set(entry) != {"time", "bundle", "count"}:
                raise ConfigError(f"{where}: give exactly time, bundle and count")
            try:
                item = DemandItem(bundle=entry["bundle"], count=entry["count"])
                at = float(entry["time"])
            except (ValidationError, TypeError, ValueError):
                raise ConfigError(
                    f"{where}: bundle must map resources to amounts and count be an integer >= 0"
                ) from None
            rows.append((at, dict(item.bundle), item.count, where))
    by_time: dict[float, list[DemandItem]] = {}
    for at, bundle, count, where in rows:
        if at < 0 or not math.isfinite(at) or count < 0:
            raise ConfigError(f"{where}: time and count must be >= 0")
        items = by_time.setdefault(at, [])
        if count > 0:
            items.append(DemandItem(bundle=bundle, count=count))
    if not by_time:
        raise ConfigError(f"{source}: the trace is empty")
    steps = tuple(TraceStep(at=at, demand=tuple(items)) for at, items in sorted(by_time.items()))
    return Trace(name=source.name, steps=steps)


def resolve_trace(
    spec: str, config: ClusterConfig, *, peak: int | None, duration: float, seed: int
) -> Trace:
    """A built-in trace by name (sized by ``peak``, default max_workers, in bundles of the
    first node type's resources), or a trace file; every bundle must fit some node type."""
    if spec in BUILTIN_TRACES:
        first = next(iter(config.available_node_types.values()))
        trace = builtin_trace(
            spec,
            peak=peak if peak is not None else config.max_workers,
            duration=duration,
            bundle=first.resources,
            seed=seed,
        )
    elif Path(spec).suffix.lower() in (".csv", ".yaml", ".yml"):
        trace = load_trace(spec)
    else:
        raise ConfigError(
            f"--trace {spec!r}: use one of {', '.join(BUILTIN_TRACES)} or a "
            ".csv/.yaml file of time, bundle, count"
        )
    for step in trace.steps:
        for item in step.demand:
            if not any(
                fits(item.bundle, t.resources) for t in config.available_node_types.values()
            ):
                raise ConfigError(
                    f"trace {trace.name} at {step.at:g}s: no node type can fit "
                    f"bundle {format_bundle(item.bundle)}"
                )
    return trace


@dataclass(frozen=True)
class Sample:
    """The cluster after one tick."""

    at: float  # seconds since the start
    demand: int  # bundles demanded
    counts: Mapping[str, int]  # node records by status


@dataclass
class SimulationResult:
    report: dict[str, Any]
    samples: list[Sample]
    calls: list[tuple[float, str]]  # (seconds since the start, action) of every attempt
    ticks: int
    decide_seconds: list[float] = field(default_factory=list)


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
        self.provider: MemoryProvider = build_memory_provider(config, self.clock, self.settings)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if ledger_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steadyscale-sim-")
            ledger_path = Path(self._tmp.name) / "ledger.db"
        elif ledger_path.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
        self.ledger = Ledger(ledger_path)
        metrics = build_metrics(config, self.clock)
        self.autoscaler = Autoscaler(
            config,
            self.provider,
            self.ledger,
            self.clock,
            metrics=metrics,
            health=build_health(memory_prober(config, self.provider), self.clock, metrics),
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

    # ------------------------------------------------------------------ report

    def _capacity_times(
        self, samples: Sequence[Sample], reports: Sequence[TickReport]
    ) -> list[dict[str, Any]]:
        """For each rise in demand: how long until the demand was all on ready nodes, at
        the end of the tick that saw it. A rise overtaken by a higher one is met when that
        one is; one the demand fell back from first was never met (None)."""
        rises: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        previous = 0
        for sample, report in zip(samples, reports, strict=True):
            waiting = [r for r in waiting if r["demand"] <= sample.demand]
            if sample.demand > previous:
                rise: dict[str, Any] = {
                    "at_seconds": round(sample.at, 3),
                    "demand": sample.demand,
                    "seconds": None,
                }
                rises.append(rise)
                waiting.append(rise)
            previous = sample.demand
            if report.capacity_met:
                done = sample.at + report.duration
                for rise in waiting:
                    rise["seconds"] = round(done - rise["at_seconds"], 3)
                waiting = []
        return rises

    def _report(self, samples: Sequence[Sample], reports: Sequence[TickReport]) -> dict[str, Any]:
        end = self.clock.now()
        truth = [
            i
            for i in self.provider.truth(include_gone=True)
            if i.tags.get(TAG_CLUSTER) == self.config.cluster_name
        ]
        hours: dict[str, float] = {}
        for inst in truth:
            # EC2 bills from running until shutting-down, not the boot before it.
            if inst.running_at is None:
                continue
            stop = inst.terminate_requested_at if inst.terminate_requested_at is not None else end
            hours[inst.instance_type] = (
                hours.get(inst.instance_type, 0.0) + max(0.0, stop - inst.running_at) / 3600.0
            )
        cost: dict[str, Any]
        priced = {t: h for t, h in hours.items() if t in self.prices}
        if self.prices:
            by_type = {t: round(h * self.prices[t], 4) for t, h in sorted(priced.items())}
            cost = {
                "by_instance_type": by_type,
                "total": round(sum(by_type.values()), 4),
                "unpriced_instance_types": sorted(set(hours) - set(priced)),
            }
        else:
            cost = {
                "note": "no prices given (add a prices map to the config or --price "
                "TYPE=DOLLARS_PER_HOUR); cost not computed"
            }
        over, unrecorded = audit(
            self.ledger, [(i.instance_id, i.tags.get(TAG_REQUEST, "")) for i in truth]
        )
        # An instance whose launch answer was lost belongs to a request still open: the
        # next tick resends it (same ClientToken) or adopts the instance. Not a duplicate
        # nor a leak yet, but shown apart.
        open_requests = {r.request_id for r in self.ledger.requests(open_only=True)}
        awaited = {i.instance_id for i in truth if i.tags.get(TAG_REQUEST) in open_requests}
        tracked = {
            r.instance_id
            for r in self.autoscaler.records.values()
            if r.instance_id and r.status in HAS_INSTANCE
        }
        alive = [i for i in truth if i.state.value != "terminated"]
        leaks = sum(
            1
            for i in alive
            if i.instance_id not in tracked
            and i.instance_id not in awaited
            and i.state.value != "shutting-down"
        )
        by_action = self.provider.calls.by_action()
        throttles = sum(
            n
            for outcomes in by_action.values()
            for code, n in outcomes.items()
            if code == "RequestLimitExceeded"
        )
        stuck = sum(1 for r in reports if r.duration > self.config.max_tick_seconds)
        rises = self._capacity_times(samples, reports)
        final = reports[-1].counts if reports else {}
        return {
            "trace": self.trace.name,
            "seed": self.seed,
            "model_profile": self.settings.profile,
            "duration_seconds": self.duration,
            "ticks": len(reports),
            "time_to_capacity_seconds": rises[0]["seconds"] if rises else None,
            "capacity_after_each_rise": rises,
            "peak_demand": max((s.demand for s in samples), default=0),
            "peak_running": max(
                (sum(s.counts.get(u.value, 0) for u in UP) for s in samples), default=0
            ),
            "instances_launched": len(truth),
            "node_hours_by_instance_type": {t: round(h, 4) for t, h in sorted(hours.items())},
            "node_hours_total": round(sum(hours.values()), 4),
            "cost": cost,
            "api_calls_by_action": {a: sum(o.values()) for a, o in by_action.items()},
            "api_calls_by_outcome": by_action,
            "api_calls_total": sum(sum(o.values()) for o in by_action.values()),
            "throttles": throttles,
            "duplicates": over + len([i for i in unrecorded if i not in awaited]),
            "leaks": leaks,
            "awaiting_adoption": len(awaited - tracked),
            "alive_at_end": len(alive),
            "stuck_ticks": stuck,
            "tick_errors": sum(len(r.errors) for r in reports),
            "final_nodes": {k: v for k, v in sorted(final.items()) if Status(k) not in TERMINAL},
        }


def write_report(result: SimulationResult, directory: Path) -> tuple[Path, Path]:
    """report.json and report.png (demand vs nodes by status; API calls per minute)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(
        json.dumps(result.report, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    png_path = directory / "report.png"
    plot(result, png_path)
    return json_path, png_path


def plot(result: SimulationResult, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    minutes = [s.at / 60.0 for s in result.samples]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    layers = [[s.counts.get(status.value, 0) for s in result.samples] for status in PLOTTED]
    top.stackplot(minutes, layers, labels=[s.value for s in PLOTTED], alpha=0.8, step="post")
    top.step(
        minutes,
        [s.demand for s in result.samples],
        where="post",
        color="black",
        linewidth=1.5,
        label="demand (bundles)",
    )
    top.set_ylabel("nodes")
    top.set_title(
        f"steadyscale simulate: trace {result.report['trace']}, seed "
        f"{result.report['seed']}, profile {result.report['model_profile']}"
    )
    top.legend(loc="upper right", fontsize="small")
    span = max(1, math.ceil(result.report["duration_seconds"] / 60.0))
    per_minute: dict[str, list[int]] = {}
    for at, action in result.calls:
        index = min(span - 1, max(0, int(at // 60)))
        per_minute.setdefault(action, [0] * span)[index] += 1
    bottoms = [0] * span
    for action, counts in sorted(per_minute.items()):
        bottom.bar(range(span), counts, bottom=bottoms, width=1.0, align="edge", label=action)
        bottoms = [a + b for a, b in zip(bottoms, counts, strict=True)]
    bottom.set_ylabel("API calls / min")
    bottom.set_xlabel("minutes")
    if per_minute:
        bottom.legend(loc="upper right", fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
