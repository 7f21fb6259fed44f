"""The daemon's progress lines and summary, in process on the memory backend and a fake
clock: demand no node type can hold is said, with why, and capacity is never reached."""

from __future__ import annotations

import io
import json
from pathlib import Path

from steadyscale.app.daemon import format_summary, run_daemon
from steadyscale.app.runtime import (
    Runtime,
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.core.resources import DemandItem
from steadyscale.emulator import build_settings
from steadyscale.loop.autoscaler import Event
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger
from tests.cluster import QUIET_ERRORS, cluster_config

WHY = "4 x {CPU: 2, GPU: 1}: no node type offers GPU"


def _runtime(*demand: DemandItem) -> Runtime:
    config = cluster_config(provider={"type": "memory"})
    clock = FakeClock(1_000_000.0)
    metrics = build_metrics(config, clock)
    settings = build_settings(profile="realistic", overrides={"errors": QUIET_ERRORS})
    memory = build_memory_provider(config, clock, settings, observer=metrics.api_call)
    ledger = Ledger(":memory:")
    ledger.set_demand(demand, clock.now())
    return Runtime(
        config=config,
        clock=clock,
        provider=memory,
        ledger=ledger,
        ledger_path=Path(":memory:"),
        metrics=metrics,
        health=build_health(memory_prober(config, memory), clock, metrics),
    )


def test_run_says_which_demand_fits_no_node_type_and_never_reaches_capacity() -> None:
    runtime = _runtime(
        DemandItem(bundle={"CPU": 2}, count=2), DemandItem(bundle={"CPU": 2, "GPU": 1}, count=4)
    )
    out = io.StringIO()
    try:
        summary = run_daemon(runtime, out=out, max_seconds=120)
    finally:
        runtime.close()
    lines = out.getvalue().splitlines()
    said = [line for line in lines if " infeasible " in line]
    assert len(said) == 1 and said[0].endswith(f"4 bundle(s) no node type can hold: {WHY}")
    assert not [line for line in lines if "all demand placed" in line]
    assert any("demand 6 (4 fit no node type) |" in line for line in lines)
    assert any("ready 1" in line for line in lines)  # the demand that fits is placed
    assert summary.capacity_seconds is None and summary.infeasible == [WHY]
    as_json = json.loads(json.dumps(summary.as_dict()))
    assert as_json["infeasible_bundles"] == 4 and as_json["infeasible_demand"] == [WHY]
    assert as_json["time_to_capacity_seconds"] is None
    text = format_summary(summary)
    assert "  time to capacity   not reached: some demand fits no node type\n" in text
    assert f"  fit no node type   4 bundle(s): {WHY}\n" in text


def test_demand_that_all_fits_gives_the_summary_it_always_gave() -> None:
    runtime = _runtime(DemandItem(bundle={"CPU": 2}, count=2))
    out = io.StringIO()
    try:
        summary = run_daemon(runtime, out=out, max_seconds=120)
    finally:
        runtime.close()
    assert " infeasible " not in out.getvalue() and "fit no node type" not in out.getvalue()
    assert summary.infeasible == [] and summary.as_dict()["infeasible_bundles"] == 0
    assert "fit no node type" not in format_summary(summary)


def test_the_summary_audits_the_memory_backends_ground_truth() -> None:
    runtime = _runtime(DemandItem(bundle={"CPU": 2}, count=2))
    try:
        summary = run_daemon(runtime, out=io.StringIO(), max_seconds=120)
        truth = runtime.ground_truth()
    finally:
        runtime.close()
    assert truth is not None and len(truth) == summary.nodes_launched == 2
    assert summary.duplicates == 0
    assert summary.leaks == 2  # the demand stands: both instances still run at the end


def test_the_loops_and_the_runs_events_reach_on_event_even_when_quiet() -> None:
    runtime = _runtime()
    step = {"at_seconds": 0, "demand": [{"bundle": {"CPU": 2}, "count": 2}]}
    runtime.config = cluster_config(provider={"type": "memory"}, scenario=[step])
    events: list[Event] = []
    try:
        run_daemon(runtime, out=io.StringIO(), max_seconds=120, quiet=True, on_event=events.append)
    finally:
        runtime.close()
    kinds = {e.kind for e in events}
    assert {"demand", "launch", "capacity"} <= kinds, kinds
