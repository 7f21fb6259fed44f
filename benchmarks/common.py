"""What the scale benchmarks share: drive the real loop until N nodes run, and the moment
an instance could first be confirmed given the delays the emulator drew for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from steadyscale.app.runtime import Runtime, build_autoscaler
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.emulator import Operation, TrackedInstance
from steadyscale.loop.autoscaler import Autoscaler, TickReport


@dataclass
class Ramp:
    autoscaler: Autoscaler
    start: float
    took: float
    confirmed: int
    ticks: list[TickReport] = field(default_factory=list)


def ramp_up(runtime: Runtime, nodes: int, max_seconds: float) -> Ramp:
    """Demand ``nodes`` x {CPU: 2} now; tick until all are confirmed running (or give up)."""
    clock = runtime.clock
    autoscaler = build_autoscaler(runtime)
    ticks: list[TickReport] = []
    start = clock.now()
    runtime.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=nodes)], start)

    def confirmed() -> int:
        return sum(1 for r in autoscaler.records.values() if r.status is Status.READY)

    def done(report: TickReport) -> bool:
        ticks.append(report)
        return confirmed() >= nodes or clock.now() - start > max_seconds

    autoscaler.run(until=done)
    return Ramp(
        autoscaler=autoscaler,
        start=start,
        took=clock.now() - start,
        confirmed=confirmed(),
        ticks=ticks,
    )


def ready_at(inst: TrackedInstance) -> float:
    """Earliest moment an instance could be confirmed: running, and shown by some lookup."""
    shown = min(inst.visible_at[Operation.DESCRIBE_BY_ID], inst.visible_at[Operation.LISTING])
    return max(inst.running_at or float("inf"), shown)
