"""Scale 0 -> N -> 0 against the emulator and compare with the fastest EC2 allows.

The real autoscaler (scheduler, reconciler, ledger, boto3 provider) runs against the
embedded emulator in real time (``--time-scale`` shrinks every delay alike). Demand for N
nodes arrives at once; the run measures the time until every demanded node is running and
confirmed by the autoscaler, and compares it with the lower bound: the earliest moment at
which every instance could be both running and visible (by id or in a listing), given the
delays the emulator drew for it, counted from the demand's arrival. Then demand drops to
zero and the run checks, from the emulator's ground truth, that nothing leaked and nothing
was launched twice.

With ``--events`` the autoscaler also reads EC2's events (the embedded emulator emits
them through its EventBridge rules to its SQS queue): state changes move the nodes, so the
full listing runs only every ``full_listing_interval_seconds`` (target: at most 0.02 EC2
API calls per node launched).

    python benchmarks/scale_up.py --nodes 1000 --profile realistic [--events] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import ramp_up, ready_at
from steadyscale.app.daemon import ground_truth_checks
from steadyscale.app.runtime import open_runtime
from steadyscale.config import parse_config
from steadyscale.loop.autoscaler import TickReport

TARGET_RATIO = 1.25
TARGET_CALLS_PER_NODE = 0.05
TARGET_CALLS_PER_NODE_EVENTS = 0.02


def _config(
    nodes: int, profile: str, seed: int, time_scale: float, ledger: Path, *, events: bool
) -> Any:
    extra: dict[str, Any] = {"events": {"queue_name": "bench-events"}} if events else {}
    return parse_config(
        {
            **extra,
            "cluster_name": "bench",
            "max_workers": nodes,
            "upscaling_speed": float(nodes),
            "idle_timeout_minutes": 0,
            "loop_interval_seconds": 5,
            "ledger": str(ledger),
            "provider": {
                "type": "emulator",
                "emulator": {"profile": profile, "seed": seed, "time_scale": time_scale},
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


def run(
    nodes: int,
    profile: str,
    seed: int,
    time_scale: float,
    max_seconds: float,
    *,
    events: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(nodes, profile, seed, time_scale, Path(tmp) / "ledger.db", events=events)
        runtime = open_runtime(config, None)
        try:
            result = _measure(runtime, nodes, max_seconds)
        finally:
            runtime.close()
    result["events"] = events
    if events:
        result["targets"]["api_calls_per_node"] = TARGET_CALLS_PER_NODE_EVENTS
    return result


def _measure(runtime: Any, nodes: int, max_seconds: float) -> dict[str, Any]:
    clock = runtime.clock
    ramp = ramp_up(runtime, nodes, max_seconds)
    autoscaler, ticks, start, took = ramp.autoscaler, ramp.ticks, ramp.start, ramp.took
    up_calls = runtime.provider.calls_by_action()
    confirmed = ramp.confirmed
    assert runtime.emulator is not None
    truth = runtime.emulator.truth(runtime.config.provider.region)
    ready = [ready_at(i) for i in truth]
    lower_bound = (max(ready) - start) if ready else float("nan")

    runtime.ledger.set_demand([], clock.now())
    down_start = clock.now()

    def quiet(report: TickReport) -> bool:
        ticks.append(report)
        alive = [
            i
            for i in runtime.emulator.truth(runtime.config.provider.region)
            if i.state.value != "terminated"
        ]
        return (report.settled and not alive) or clock.now() - down_start > max_seconds

    autoscaler.run(until=quiet)
    duplicates, leaks = ground_truth_checks(runtime)
    all_calls = runtime.provider.calls_by_action()
    up_total = sum(up_calls.values())
    launched = len(runtime.ledger.known_instance_ids())
    return {
        "nodes": nodes,
        "profile": runtime.emulator.settings.profile,
        "seed": runtime.emulator.settings.seed,
        "time_scale": runtime.emulator.settings.time_scale,
        "confirmed_running": confirmed,
        "time_to_capacity_s": round(took, 2),
        "lower_bound_s": round(lower_bound, 2),
        "ratio": round(took / lower_bound, 3) if lower_bound > 0 else None,
        "api_calls_scale_up": dict(sorted(up_calls.items())),
        "api_calls_per_node": round(up_total / launched, 4) if launched else None,
        "api_calls_full_cycle": dict(sorted(all_calls.items())),
        "server_side_calls": runtime.emulator.calls.by_action(),
        "nodes_launched": launched,
        "duplicates": duplicates,
        "leaks": leaks,
        "scale_down_s": round(clock.now() - down_start, 2),
        "largest_tick_s": round(max(r.duration for r in ticks), 3),
        "ticks": len(ticks),
        "tick_errors": sum(len(r.errors) for r in ticks),
        "targets": {
            "ratio": TARGET_RATIO,
            "api_calls_per_node": TARGET_CALLS_PER_NODE,
            "duplicates": 0,
            "leaks": 0,
        },
    }


def _table(r: dict[str, Any]) -> str:
    ok = (
        r["ratio"] is not None
        and r["ratio"] <= TARGET_RATIO
        and r["api_calls_per_node"] is not None
        and r["api_calls_per_node"] <= r["targets"]["api_calls_per_node"]
        and r["duplicates"] == 0
        and r["leaks"] == 0
    )
    rows = [
        ("nodes demanded / confirmed running", f"{r['nodes']} / {r['confirmed_running']}"),
        ("time to capacity", f"{r['time_to_capacity_s']} s"),
        ("lower bound (drawn delays)", f"{r['lower_bound_s']} s"),
        ("ratio (target <= 1.25)", str(r["ratio"])),
        (
            f"API calls per node (target <= {r['targets']['api_calls_per_node']})",
            str(r["api_calls_per_node"]),
        ),
        ("API calls, scale-up", ", ".join(f"{k} {v}" for k, v in r["api_calls_scale_up"].items())),
        (
            "API calls, full cycle",
            ", ".join(f"{k} {v}" for k, v in r["api_calls_full_cycle"].items()),
        ),
        ("duplicates / leaks", f"{r['duplicates']} / {r['leaks']}"),
        ("scale-down to zero", f"{r['scale_down_s']} s"),
        (
            "largest tick",
            f"{r['largest_tick_s']} s over {r['ticks']} ticks "
            f"({r['tick_errors']} tick errors survived)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    head = (
        f"scale 0 -> {r['nodes']} -> 0, profile {r['profile']}, seed {r['seed']}, "
        f"time scale {r['time_scale']}{', events on' if r['events'] else ''}"
    )
    body = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    return f"{head}\n{body}\ntargets: {'met' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--profile", choices=["none", "realistic", "harsh"], default="realistic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        dest="time_scale",
        help="emulated seconds pass 1/time_scale times faster (default 1)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=1800.0,
        dest="max_seconds",
        help="give up on a phase after this many emulated seconds",
    )
    parser.add_argument(
        "--events", action="store_true", help="read EC2's events (the emulator's SQS queue)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.time_scale <= 0:
        parser.error("--nodes must be >= 1 and --time-scale > 0")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    result = run(
        args.nodes, args.profile, args.seed, args.time_scale, args.max_seconds, events=args.events
    )
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
