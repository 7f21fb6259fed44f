"""What a simulation adds up to: ``SimulationReport`` (report.json and ``simulate --json``:
its ``model_dump`` is the file's keys and values) and the figures behind it: time to
capacity after each rise, node-hours and cost, duplicates and leaks, API calls."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from steadyscale.core.instances import TAG_REQUEST
from steadyscale.sim.plot import plot
from steadyscale.testing.audit import audit

if TYPE_CHECKING:
    from steadyscale.ec2model.instances import TrackedInstance
    from steadyscale.loop.autoscaler import TickReport
    from steadyscale.store.ledger import Ledger

# A sum that is 0 when nothing was summed: report.json has always written that as 0, not
# 0.0, and a float field would change the file.
Number = int | float


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacityRise(_Out):
    at_seconds: float = Field(description="when the demand rose, seconds after the start")
    demand: int = Field(ge=0, description="bundles demanded from then on")
    seconds: float | None = Field(
        description="until the demand was all on ready nodes (at the end of the tick that "
        "saw it); null: never, as the demand fell back first or the run ended"
    )


class PricedCost(_Out):
    by_instance_type: dict[str, float] = Field(description="dollars per priced type")
    total: Number
    unpriced_instance_types: list[str] = Field(description="types that ran without a price")


class UnpricedCost(_Out):
    note: str


class SimulationReport(_Out):
    """What ``steadyscale simulate`` writes to report.json (and prints with ``--json``)."""

    trace: str
    seed: int
    model_profile: str = Field(description="the EC2 model's profile: none, realistic, harsh")
    duration_seconds: Number = Field(description="virtual seconds simulated")
    ticks: int
    time_to_capacity_seconds: float | None = Field(description="of the first rise")
    capacity_after_each_rise: list[CapacityRise]
    peak_demand: int = Field(description="bundles")
    peak_running: int = Field(description="nodes up (running or ready) after a tick")
    instances_launched: int
    node_hours_by_instance_type: dict[str, float] = Field(
        description="from running until shutting-down, as EC2 bills"
    )
    node_hours_total: Number
    cost: PricedCost | UnpricedCost
    cost_at_pool_prices: PricedCost = Field(
        description="the same node hours, each instance at its pool's price when it launched "
        "(the on-demand table or its spot pool's price, as `status` and the "
        "steadyscale_cost_per_hour metric count it)"
    )
    api_calls_by_action: dict[str, int]
    api_calls_by_outcome: dict[str, dict[str, int]]
    api_calls_total: int
    throttles: int = Field(description="calls answered RequestLimitExceeded")
    duplicates: int = Field(description="instances beyond what a launch asked for or unrecorded")
    leaks: int = Field(description="instances alive that no node record tracks")
    awaiting_adoption: int = Field(
        description="instances of a launch whose answer was lost, of a request still open"
    )
    alive_at_end: int
    stuck_ticks: int = Field(description="ticks longer than max_tick_seconds")
    tick_errors: int
    final_nodes: dict[str, int] = Field(description="node records by live status at the end")


@dataclass(frozen=True)
class Sample:
    """The cluster after one tick."""

    at: float  # seconds since the start
    demand: int  # bundles demanded
    counts: Mapping[str, int]  # node records by status


@dataclass
class SimulationResult:
    report: SimulationReport
    samples: list[Sample]
    calls: list[tuple[float, str]]  # (seconds since the start, action) of every attempt
    ticks: int


@dataclass
class _Rise:
    at_seconds: float
    demand: int
    seconds: float | None = None


def capacity_after_each_rise(
    samples: Sequence[Sample], reports: Sequence[TickReport]
) -> list[CapacityRise]:
    """For each rise in demand: how long until the demand was all on ready nodes, at
    the end of the tick that saw it. A rise overtaken by a higher one is met when that
    one is; one the demand fell back from first was never met (None)."""
    rises: list[_Rise] = []
    waiting: list[_Rise] = []
    previous = 0
    for sample, report in zip(samples, reports, strict=True):
        waiting = [r for r in waiting if r.demand <= sample.demand]
        if sample.demand > previous:
            rise = _Rise(at_seconds=round(sample.at, 3), demand=sample.demand)
            rises.append(rise)
            waiting.append(rise)
        previous = sample.demand
        if report.capacity_met:
            done = sample.at + report.duration
            for rise in waiting:
                rise.seconds = round(done - rise.at_seconds, 3)
            waiting = []
    return [
        CapacityRise(at_seconds=r.at_seconds, demand=r.demand, seconds=r.seconds) for r in rises
    ]


def node_hours(truth: Sequence[TrackedInstance], end: float) -> dict[str, float]:
    """Hours by instance type, from running until shutting-down (or ``end``): EC2 bills
    from running, not the boot before it."""
    hours: dict[str, float] = {}
    for inst in truth:
        if inst.running_at is None:
            continue
        stop = inst.terminate_requested_at if inst.terminate_requested_at is not None else end
        hours[inst.instance_type] = (
            hours.get(inst.instance_type, 0.0) + max(0.0, stop - inst.running_at) / 3600.0
        )
    return hours


def cost_of(hours: Mapping[str, float], prices: Mapping[str, float]) -> PricedCost | UnpricedCost:
    if not prices:
        return UnpricedCost(
            note="no prices given (add a prices map to the config or --price "
            "TYPE=DOLLARS_PER_HOUR); cost not computed"
        )
    priced = {t: h for t, h in hours.items() if t in prices}
    by_type = {t: round(h * prices[t], 4) for t, h in sorted(priced.items())}
    return PricedCost(
        by_instance_type=by_type,
        total=round(sum(by_type.values()), 4),
        unpriced_instance_types=sorted(set(hours) - set(priced)),
    )


def pool_priced_cost(truth: Sequence[TrackedInstance], end: float) -> PricedCost:
    """Dollars by instance type, each instance's billed hours at its pool's price at
    launch (ground truth's, from the same table and spot prices the autoscaler reads)."""
    cost: dict[str, float] = {}
    unpriced: set[str] = set()
    for inst in truth:
        if inst.running_at is None:
            continue
        if inst.hourly_price is None:
            unpriced.add(inst.instance_type)
            continue
        stop = inst.terminate_requested_at if inst.terminate_requested_at is not None else end
        hours = max(0.0, stop - inst.running_at) / 3600.0
        cost[inst.instance_type] = cost.get(inst.instance_type, 0.0) + hours * inst.hourly_price
    by_type = {t: round(c, 4) for t, c in sorted(cost.items())}
    return PricedCost(
        by_instance_type=by_type,
        total=round(sum(by_type.values()), 4),
        unpriced_instance_types=sorted(unpriced - set(cost)),
    )


@dataclass(frozen=True)
class FleetAudit:
    """The instances EC2 ran, held against the ledger and the node records."""

    duplicates: int
    leaks: int
    awaiting_adoption: int
    alive: int


def audit_fleet(
    ledger: Ledger, truth: Sequence[TrackedInstance], tracked: Collection[str]
) -> FleetAudit:
    """``tracked``: the instance ids node records hold while EC2 runs them."""
    over, unrecorded = audit(ledger, [(i.instance_id, i.tags.get(TAG_REQUEST, "")) for i in truth])
    # An instance whose launch answer was lost belongs to a request still open: the
    # next tick resends it (same ClientToken) or adopts the instance. Not a duplicate
    # nor a leak yet, but shown apart.
    open_requests = {r.request_id for r in ledger.requests(open_only=True)}
    awaited = {i.instance_id for i in truth if i.tags.get(TAG_REQUEST) in open_requests}
    alive = [i for i in truth if i.state.value != "terminated"]
    leaks = sum(
        1
        for i in alive
        if i.instance_id not in tracked
        and i.instance_id not in awaited
        and i.state.value != "shutting-down"
    )
    return FleetAudit(
        duplicates=over + len([i for i in unrecorded if i not in awaited]),
        leaks=leaks,
        awaiting_adoption=len(awaited - set(tracked)),
        alive=len(alive),
    )


def throttles(by_action: Mapping[str, Mapping[str, int]]) -> int:
    return sum(
        n
        for outcomes in by_action.values()
        for code, n in outcomes.items()
        if code == "RequestLimitExceeded"
    )


def write_report(result: SimulationResult, directory: Path) -> tuple[Path, Path]:
    """report.json and report.png (demand vs nodes by status; API calls per minute)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(
        json.dumps(result.report.model_dump(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    png_path = directory / "report.png"
    plot(result, png_path)
    return json_path, png_path
