"""The simulator at scale: N nodes for one virtual hour, burst and diurnal traces.

The real autoscaler (scheduler, reconciler, SQLite ledger) runs against the in-memory EC2
backend (profile realistic) on a virtual clock. EC2's default instance-launch bucket (1000
then 2 a second) alone would take over an hour to launch 10,000 instances, so the run
models an account whose limits were raised tenfold (the model's and the client's buckets
alike). Printed: wall time and ticks per second per trace, the decide step (reconcile:
scheduler and passive moves) and a whole tick with N instances running, and peak memory.
The baseline measured in the same run is real time (virtual seconds per wall second);
with the ``ray`` package installed, also Ray's ``StandardAutoscaler.update()`` at the same
instance count on a mock node provider written here, and the ratio of the two.

    python benchmarks/simulate.py --nodes 10000 [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import time
from typing import Any

from steadyscale.app.runtime import assemble_simulation
from steadyscale.config import DEFAULT_RATE_LIMITS, ClusterConfig, parse_config
from steadyscale.core.lifecycle import UP
from steadyscale.core.reconciler import Observation, reconcile
from steadyscale.sim import Simulation, Trace, TraceStep, fewer_collections, resolve_trace

TARGET_WALL_S = 30.0
TARGET_DECIDE_MS = 50.0
LIMITS_SCALE = 10  # an account with ten times EC2's default API and launch limits


def _config(nodes: int) -> ClusterConfig:
    raised = {
        name: {
            "capacity": limit.capacity * LIMITS_SCALE,
            "refill_per_second": limit.refill_per_second * LIMITS_SCALE,
        }
        for name, limit in DEFAULT_RATE_LIMITS.items()
    }
    return parse_config(
        {
            "cluster_name": "bench",
            "max_workers": nodes,
            "upscaling_speed": 1.0,
            "idle_timeout_minutes": 5,
            "loop_interval_seconds": 5,
            "provider": {
                "type": "memory",
                "rate_limits": raised,
                "emulator": {
                    "profile": "realistic",
                    "throttling": {"enabled": True, "scale": LIMITS_SCALE},
                },
            },
            "available_node_types": {
                "worker": {
                    "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                    "resources": {"CPU": 2},
                    "max_workers": nodes,
                },
            },
        }
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_trace(
    config: ClusterConfig, name: str, nodes: int, duration: float, seed: int
) -> dict[str, Any]:
    trace = resolve_trace(name, config, peak=nodes, duration=duration, seed=seed)
    sim = Simulation(config, trace, seed=seed, duration=duration, assemble=assemble_simulation)
    try:
        started = time.perf_counter()
        result = sim.run()
        wall = time.perf_counter() - started
    finally:
        sim.close()
    report = result.report.model_dump()
    return {
        "wall_s": round(wall, 2),
        "ticks": result.ticks,
        "ticks_per_s": round(result.ticks / wall, 1),
        "virtual_s_per_wall_s": round(duration / wall, 1),
        "peak_running": report["peak_running"],
        "time_to_capacity_s": report["time_to_capacity_seconds"],
        "api_calls_total": report["api_calls_total"],
        "throttles": report["throttles"],
        "duplicates": report["duplicates"],
        "leaks": report["leaks"],
        "tick_errors": report["tick_errors"],
    }


def _ms(samples: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(samples) * 1000, 2),
        "max": round(max(samples) * 1000, 2),
    }


def measure_steady(config: ClusterConfig, nodes: int, seed: int, repeats: int) -> dict[str, Any]:
    """Bring N nodes up, then time the decide step and whole ticks with all N running."""
    steady = resolve_trace("burst", config, peak=nodes, duration=10 * 3600.0, seed=seed)
    trace = Trace(name="steady", steps=(TraceStep(at=0.0, demand=steady.steps[0].demand),))
    sim = Simulation(config, trace, seed=seed, duration=900.0, assemble=assemble_simulation)
    try:
        sim.run()
        with fewer_collections():  # as while simulating
            return _time_steady(sim, config, repeats)
    finally:
        sim.close()


def _time_steady(sim: Simulation, config: ClusterConfig, repeats: int) -> dict[str, Any]:
    autoscaler = sim.autoscaler
    running = sum(1 for r in autoscaler.records.values() if r.status in UP)
    # The decide step on a full listing: every instance shown, as on a listing tick.
    observation = Observation(
        instances={i.instance_id: i for i in sim.provider.list_cluster()}, listing_complete=True
    )
    demand = sim.ledger.demand()
    decide = []
    for _ in range(repeats):
        records = autoscaler.active_records()
        started = time.perf_counter()
        reconcile(
            now=sim.clock.now(),
            config=config,
            records=records,
            demand=demand,
            observation=observation,
            known_instance_ids=frozenset(autoscaler.known_ids),
        )
        decide.append(time.perf_counter() - started)
    ticks = []
    for _ in range(repeats):
        started = time.perf_counter()
        autoscaler.tick()
        ticks.append(time.perf_counter() - started)
        sim.clock.advance(config.loop_interval_seconds)
    return {"running": running, "decide_ms": _ms(decide), "tick_ms": _ms(ticks)}


def measure_ray(nodes: int, repeats: int) -> dict[str, Any]:
    """Ray's StandardAutoscaler.update() with N workers up and N bundles placed on them."""
    try:
        import ray_mock  # noqa: PLC0415 - next to this file; needs ray
    except ImportError as exc:
        return {"skipped": f"ray is not installed ({exc.name})"}
    return ray_mock.time_update(nodes, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument(
        "--duration",
        type=float,
        default=3600.0,
        help="virtual seconds per trace (default one hour)",
    )
    parser.add_argument("--traces", default="burst,diurnal")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed decide steps, ticks and Ray updates"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    config = _config(args.nodes)
    traces = {
        name: run_trace(config, name, args.nodes, args.duration, args.seed)
        for name in args.traces.split(",")
    }
    steady = measure_steady(config, args.nodes, args.seed, args.repeats)
    ray = measure_ray(args.nodes, args.repeats)
    decide = steady["decide_ms"]["median"]
    tick = steady["tick_ms"]["median"]
    report: dict[str, Any] = {
        "nodes": args.nodes,
        "virtual_seconds": args.duration,
        "traces": traces,
        "running_at_measure": steady["running"],
        "decide_ms": steady["decide_ms"],
        "tick_ms": steady["tick_ms"],
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "targets": {"wall_s": TARGET_WALL_S, "decide_ms": TARGET_DECIDE_MS},
        "meets_targets": all(t["wall_s"] <= TARGET_WALL_S for t in traces.values())
        and decide <= TARGET_DECIDE_MS,
        "ray": ray,
        "ray_update_over_our_tick": (
            round(ray["update_ms"]["median"] / tick, 2) if "update_ms" in ray else None
        ),
    }
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    """The report for a person: one line per trace, then the steady-state timings."""
    traces, ray = report["traces"], report["ray"]
    decide, tick = report["decide_ms"], report["tick_ms"]
    print(
        f"simulate: {report['nodes']} nodes, {report['virtual_seconds']:.0f} virtual s per trace "
        f"(targets: <= {TARGET_WALL_S:.0f} s wall, decide <= {TARGET_DECIDE_MS:.0f} ms)"
    )
    print(
        f"  {'trace':<10} {'wall s':>8} {'ticks':>6} {'ticks/s':>8} {'x real':>7} "
        f"{'peak run':>9} {'capacity s':>11} {'calls':>6} {'dup':>4} {'leak':>5}"
    )
    for name, t in traces.items():
        capacity = "-" if t["time_to_capacity_s"] is None else f"{t['time_to_capacity_s']:.0f}"
        print(
            f"  {name:<10} {t['wall_s']:>8.2f} {t['ticks']:>6} {t['ticks_per_s']:>8.1f} "
            f"{t['virtual_s_per_wall_s']:>7.0f} {t['peak_running']:>9} {capacity:>11} "
            f"{t['api_calls_total']:>6} {t['duplicates']:>4} {t['leaks']:>5}"
        )
    print(
        f"  with {report['running_at_measure']} running: decide {decide['median']:.1f} ms (max "
        f"{decide['max']:.1f}), whole tick {tick['median']:.1f} ms (max {tick['max']:.1f})"
    )
    print(f"  peak memory {report['peak_rss_mb']:.0f} MB (max RSS)")
    if "update_ms" in ray:
        print(
            f"  Ray StandardAutoscaler.update() at {ray['nodes']} nodes: "
            f"{ray['update_ms']['median']:.1f} ms (max {ray['update_ms']['max']:.1f}); "
            f"ratio to our tick {report['ray_update_over_our_tick']:.2f}x"
        )
    else:
        print(f"  Ray comparison skipped: {ray['skipped']}")
    print(f"  meets targets: {'yes' if report['meets_targets'] else 'no'}")


if __name__ == "__main__":
    sys.exit(main())
