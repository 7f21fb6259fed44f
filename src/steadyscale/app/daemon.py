"""``steadyscale run``: the loop, a scripted scenario if the config has one, live output and
a summary at the end (nodes, time to capacity, demand no node type can hold, API calls,
duplicates, leaks).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from steadyscale.app.replica import run_replica
from steadyscale.app.runtime import Runtime, build_autoscaler
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import UP, Status
from steadyscale.core.resources import format_bundle
from steadyscale.loop.autoscaler import Autoscaler, Event, TickReport
from steadyscale.store.errors import StoreUnavailableError
from steadyscale.store.ledger import Ledger
from steadyscale.testing.audit import audit

_SHOWN = (
    Status.REQUESTED,
    Status.LAUNCHED,
    Status.PENDING,
    Status.RUNNING,
    Status.READY,
    Status.TERMINATING,
)


@dataclass
class RunSummary:
    elapsed_seconds: float
    ticks: int
    nodes_launched: int
    peak_running: int
    demand_at: float | None
    capacity_seconds: float | None
    infeasible: list[str]  # at the end: "4 x {CPU: 4, GPU: 1}: no node type offers GPU"
    infeasible_bundles: int
    api_calls: dict[str, int]
    api_calls_total: int
    duplicates: int | None
    leaks: int | None
    scenario_completed: bool
    errors: int
    max_tick_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "ticks": self.ticks,
            "nodes_launched": self.nodes_launched,
            "peak_running": self.peak_running,
            "time_to_capacity_seconds": (
                None if self.capacity_seconds is None else round(self.capacity_seconds, 3)
            ),
            "infeasible_bundles": self.infeasible_bundles,
            "infeasible_demand": self.infeasible,
            "api_calls": self.api_calls,
            "api_calls_total": self.api_calls_total,
            "duplicates": self.duplicates,
            "leaks": self.leaks,
            "scenario_completed": self.scenario_completed,
            "tick_errors": self.errors,
            "max_tick_seconds": round(self.max_tick_seconds, 3),
        }


class Printer:
    """Line-by-line progress: events as they happen and the node counts when they change."""

    def __init__(self, out: TextIO, start: float) -> None:
        self.out = out
        self.start = start
        self._last_counts: tuple[tuple[int, ...], int] | None = None

    def event(self, event: Event) -> None:
        self.out.write(f"{event.at - self.start:8.1f}s  {event.kind:<13} {event.message}\n")
        self.out.flush()

    def tick(self, report: TickReport, demand: int) -> None:
        counts = tuple(report.counts.get(s.value, 0) for s in _SHOWN)
        if (counts, report.infeasible) == self._last_counts:
            return
        self._last_counts = (counts, report.infeasible)
        parts = " ".join(f"{s.value} {n}" for s, n in zip(_SHOWN, counts, strict=True))
        # Demand no node type can hold is never met: said beside the demand it is part of.
        held = f" ({report.infeasible} fit no node type)" if report.infeasible else ""
        at = report.started_at + report.duration
        self.out.write(f"{at - self.start:8.1f}s  {'nodes':<13} demand {demand}{held} | {parts}\n")
        self.out.flush()


def ground_truth_checks(runtime: Runtime) -> tuple[int | None, int | None]:
    """(duplicates, leaks) from the ground truth of the embedded emulator or the memory
    backend, when there is one.

    A duplicate is a cluster instance the ledger never heard of, or one more than its
    request asked for; a leak is a cluster instance still not terminated.
    """
    everything = runtime.ground_truth()
    if everything is None:
        return None, None
    truth = [i for i in everything if i.tags.get(TAG_CLUSTER) == runtime.config.cluster_name]
    over, unrecorded = audit(
        runtime.ledger, [(i.instance_id, i.tags.get(TAG_REQUEST, "")) for i in truth]
    )
    leaks = sum(1 for i in truth if i.state.value != "terminated")
    return over + len(unrecorded), leaks


@dataclass
class RunState:
    """What a run keeps across ticks, for its progress lines and its summary."""

    next_step: int = 0  # the first scenario step not applied yet
    demand_at: float | None = None  # time to capacity counts from here
    capacity_at: float | None = None
    peak: int = 0  # most nodes running (ready or not) at once
    errors: int = 0
    ticks: int = 0
    max_tick: float = 0.0
    last: TickReport | None = None


class Run:
    """One ``run``: the scenario's steps fed into the ledger before each tick, each tick's
    report turned into progress lines and the state of the run."""

    def __init__(
        self,
        runtime: Runtime,
        out: TextIO,
        *,
        stop: threading.Event,
        max_seconds: float | None,
        quiet: bool,
        on_tick: Callable[[Autoscaler, TickReport], None] | None,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.on_event = on_event
        self.clock = runtime.clock
        self.start = self.clock.now()
        self.printer = Printer(out, self.start)
        self.stop = stop
        self.max_seconds = max_seconds
        self.quiet = quiet
        self.on_tick = on_tick
        self.steps = list(runtime.config.scenario)
        self.state = RunState()
        # Built by whoever runs it: at once for a single daemon, on each leadership for a
        # replica (built afresh from the ledger, as after a restart).
        self.autoscaler: Autoscaler | None = None

    def new_autoscaler(self) -> Autoscaler:
        self.autoscaler = build_autoscaler(self.runtime, on_event=self._event_hook())
        return self.autoscaler

    def _say(self, event: Event) -> None:
        """An event of the run itself (the scenario's demand, capacity reached)."""
        hook = self._event_hook()
        if hook is not None:
            hook(event)

    def _event_hook(self) -> Callable[[Event], None] | None:
        """The loop's events to the progress lines (unless quiet) and ``on_event``."""
        hooks = [h for h in (None if self.quiet else self.printer.event, self.on_event) if h]
        if len(hooks) < 2:
            return hooks[0] if hooks else None

        def both(event: Event) -> None:
            for hook in hooks:
                hook(event)

        return both

    @property
    def scenario_done(self) -> bool:
        return bool(self.steps) and self.state.next_step >= len(self.steps)

    def before_tick(self) -> None:
        """Apply the scenario steps that are due; stop once ``max_seconds`` have passed."""
        clock, state = self.clock, self.state
        elapsed = clock.now() - self.start
        steps = self.steps
        while state.next_step < len(steps) and steps[state.next_step].at_seconds <= elapsed:
            step = steps[state.next_step]
            self.runtime.ledger.set_demand(step.demand, clock.now())
            state.next_step += 1
            total = sum(item.count for item in step.demand)
            if total and state.demand_at is None:
                state.demand_at = clock.now()
            described = (
                ", ".join(f"{item.count} x {format_bundle(item.bundle)}" for item in step.demand)
                or "nothing"
            )
            self._say(Event(clock.now(), "demand", f"demand is now {described}"))
        if self.max_seconds is not None and clock.now() - self.start >= self.max_seconds:
            self.stop.set()

    def until(self, report: TickReport) -> bool:
        """Note the tick; the run ends once the scenario is done and the cluster settled."""
        clock, state = self.clock, self.state
        state.ticks += 1
        state.errors += len(report.errors)
        state.max_tick = max(state.max_tick, report.duration)
        state.peak = max(state.peak, sum(report.counts.get(s.value, 0) for s in UP))
        if report.capacity_met and state.demand_at is not None and state.capacity_at is None:
            state.capacity_at = clock.now()
            self._say(
                Event(
                    clock.now(),
                    "capacity",
                    f"all demand placed on ready nodes, "
                    f"{clock.now() - state.demand_at:.1f}s after it "
                    "arrived",
                )
            )
        if not self.quiet:
            self.printer.tick(report, report.demanded_bundles)
        if self.on_tick is not None and self.autoscaler is not None:
            self.on_tick(self.autoscaler, report)
        state.last = report
        return self.scenario_done and report.settled

    def summary(self) -> RunSummary:
        runtime, state = self.runtime, self.state
        duplicates, leaks = ground_truth_checks(runtime)
        calls = runtime.provider.calls_by_action()
        demand_at, capacity_at = state.demand_at, state.capacity_at
        last = state.last
        return RunSummary(
            elapsed_seconds=self.clock.now() - self.start,
            ticks=state.ticks,
            nodes_launched=_launched(runtime.ledger),
            peak_running=state.peak,
            demand_at=demand_at,
            capacity_seconds=(
                capacity_at - demand_at
                if capacity_at is not None and demand_at is not None
                else None
            ),
            infeasible=[i.describe() for i in last.infeasible_demand] if last else [],
            infeasible_bundles=last.infeasible if last else 0,
            api_calls=dict(sorted(calls.items())),
            api_calls_total=sum(calls.values()),
            duplicates=duplicates,
            leaks=leaks,
            scenario_completed=self.scenario_done and bool(state.last and state.last.settled),
            errors=state.errors,
            max_tick_seconds=state.max_tick,
        )


def run_daemon(
    runtime: Runtime,
    *,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    max_seconds: float | None = None,
    quiet: bool = False,
    on_tick: Callable[[Autoscaler, TickReport], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> RunSummary:
    run = Run(
        runtime,
        out,
        stop=stop or threading.Event(),  # the CLI sets it from SIGTERM and Ctrl-C
        max_seconds=max_seconds,
        quiet=quiet,
        on_tick=on_tick,
        on_event=on_event,
    )
    if runtime.replication is not None:
        run_replica(run, runtime.replication)
    else:
        autoscaler = run.new_autoscaler()
        autoscaler.run(stop=run.stop, until=run.until, before_tick=run.before_tick)
    return run.summary()


def format_summary(summary: RunSummary, *, time_scale: float = 1.0) -> str:
    lines = ["", "summary"]
    real = f" ({summary.elapsed_seconds * time_scale:.1f}s real)" if time_scale != 1 else ""
    lines.append(
        f"  elapsed            {summary.elapsed_seconds:.1f}s{real}, "
        f"{summary.ticks} ticks, slowest tick {summary.max_tick_seconds:.2f}s"
    )
    lines.append(
        f"  nodes launched     {summary.nodes_launched} (peak running {summary.peak_running})"
    )
    lines.append(f"  time to capacity   {_capacity(summary)}")
    if summary.infeasible:
        lines.append(
            f"  fit no node type   {summary.infeasible_bundles} bundle(s): "
            + "; ".join(summary.infeasible)
        )
    calls = ", ".join(f"{a} {n}" for a, n in summary.api_calls.items())
    per_node = (
        f", {summary.api_calls_total / summary.nodes_launched:.3f} per node"
        if summary.nodes_launched
        else ""
    )
    lines.append(f"  API calls          {summary.api_calls_total}{per_node} ({calls})")
    lines.append(f"  duplicates         {_maybe(summary.duplicates)}")
    lines.append(f"  leaks              {_maybe(summary.leaks)}")
    if summary.errors:
        lines.append(f"  tick errors        {summary.errors} (each retried on the next tick)")
    return "\n".join(lines) + "\n"


def _capacity(summary: RunSummary) -> str:
    if summary.capacity_seconds is not None:
        return f"{summary.capacity_seconds:.1f}s after the demand arrived"
    if summary.infeasible_bundles:
        return "not reached: some demand fits no node type"
    return "not reached"


def _maybe(value: int | None) -> str:
    return "n/a (no ground truth outside the emulator)" if value is None else str(value)


def _launched(ledger: Ledger) -> int:
    """How many instances the ledger knows. A database ledger whose connection broke while
    the daemon idled (a follower, a server restart) fails the first call after it; the next
    reconnects, so the summary asks twice before it gives up."""
    try:
        return len(ledger.known_instance_ids())
    except StoreUnavailableError:
        return len(ledger.known_instance_ids())
