"""Scale to thousands of nodes under EC2's real rate limits with pools out of capacity.

The real autoscaler runs against the embedded emulator with throttling at EC2's bucket
sizes (RunInstances 5 burst / 2 per s; 1,000 instances burst / 2 per s) and two of five
subnets (pools) with no capacity. It prints the time until all N nodes are running and
confirmed against the bucket-limited lower bound (the i-th instance cannot launch before
the instance bucket allows it, and then needs its own drawn boot and visibility delays),
the share of calls EC2 answered RequestLimitExceeded, and nodes launched per RunInstances.

    python benchmarks/capacity.py [--nodes 2000] [--time-scale 0.5] [--json]
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

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e"]
FULL = ZONES[:2]  # two of five pools have no capacity
BURST, REFILL = 1000, 2.0  # EC2's instance-launch bucket
TARGET_RATIO = 1.25
TARGET_THROTTLED_SHARE = 0.01


def run(nodes: int, seed: int, time_scale: float, max_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data: dict[str, Any] = {
            "cluster_name": "capacity",
            "max_workers": nodes,
            "upscaling_speed": float(nodes),
            "idle_timeout_minutes": 0,
            "loop_interval_seconds": 5,
            "ledger": str(Path(tmp) / "ledger.db"),
            "provider": {
                "type": "emulator",
                "emulator": {
                    "profile": "realistic",
                    "seed": seed,
                    "time_scale": time_scale,
                    "capacity": {"pools": {f"m5.large/{zone}": 0 for zone in FULL}},
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
        runtime = open_runtime(parse_config(data), None)
        try:
            # One subnet per zone, in order: the embedded emulator's own default subnets.
            assert runtime.emulator is not None
            found = runtime.emulator.client().describe_subnets()["Subnets"]
            by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in found}
            data["provider"]["subnets"] = [by_zone[z] for z in ZONES]
            runtime.config = parse_config(data)
            return _measure(runtime, nodes, max_seconds)
        finally:
            runtime.close()


def _measure(runtime: Any, nodes: int, max_seconds: float) -> dict[str, Any]:
    ramp = ramp_up(runtime, nodes, max_seconds)
    emulator = runtime.emulator
    truth = sorted(emulator.truth(runtime.config.provider.region), key=lambda i: i.launched_at)
    bound = 0.0
    for index, inst in enumerate(truth):
        earliest = max(0.0, (index + 1 - BURST) / REFILL)  # when the bucket allows it
        bound = max(bound, earliest + ready_at(inst) - inst.launched_at)
    calls = emulator.calls
    total = calls.count()
    throttled = calls.count(outcome="RequestLimitExceeded")
    run_ok = calls.count("RunInstances", "ok")
    zones: dict[str, int] = {}
    for inst in truth:
        zones[inst.availability_zone] = zones.get(inst.availability_zone, 0) + 1
    duplicates, _ = ground_truth_checks(runtime)
    return {
        "nodes": nodes,
        "time_scale": emulator.settings.time_scale,
        "confirmed_running": ramp.confirmed,
        "time_to_capacity_s": round(ramp.took, 2),
        "bucket_limited_lower_bound_s": round(bound, 2),
        "ratio": round(ramp.took / bound, 3) if bound > 0 else None,
        "api_calls": calls.by_action(),
        "request_limit_exceeded": throttled,
        "throttled_share": round(throttled / total, 4) if total else 0.0,
        "run_instances_ok": run_ok,
        "nodes_per_run_instances": round(len(truth) / run_ok, 1) if run_ok else None,
        "instances_by_zone": dict(sorted(zones.items())),
        "pools_without_capacity": FULL,
        "duplicates": duplicates,
        "largest_tick_s": round(max(r.duration for r in ramp.ticks), 3),
        "targets": {"ratio": TARGET_RATIO, "throttled_share": TARGET_THROTTLED_SHARE},
    }


def _table(r: dict[str, Any]) -> str:
    ok = (
        r["ratio"] is not None
        and r["ratio"] <= TARGET_RATIO
        and r["throttled_share"] <= TARGET_THROTTLED_SHARE
    )
    rows = [
        ("nodes demanded / confirmed running", f"{r['nodes']} / {r['confirmed_running']}"),
        ("time to capacity", f"{r['time_to_capacity_s']} s"),
        ("bucket-limited lower bound", f"{r['bucket_limited_lower_bound_s']} s"),
        ("ratio (target <= 1.25)", str(r["ratio"])),
        (
            "RequestLimitExceeded share (<= 1 %)",
            f"{r['throttled_share'] * 100:.2f} % ({r['request_limit_exceeded']} calls)",
        ),
        ("nodes per RunInstances", str(r["nodes_per_run_instances"])),
        ("instances by zone", ", ".join(f"{k} {v}" for k, v in r["instances_by_zone"].items())),
        ("pools without capacity", ", ".join(r["pools_without_capacity"])),
        ("API calls", ", ".join(f"{a} {sum(o.values())}" for a, o in r["api_calls"].items())),
        ("duplicates", str(r["duplicates"])),
        ("largest tick", f"{r['largest_tick_s']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    head = f"capacity: 0 -> {r['nodes']} at EC2's rate limits, time scale {r['time_scale']}"
    body = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    return f"{head}\n{body}\ntargets: {'met' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-scale", type=float, default=0.5, dest="time_scale")
    parser.add_argument("--max-seconds", type=float, default=3600.0, dest="max_seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.time_scale <= 0:
        parser.error("--nodes must be >= 1 and --time-scale > 0")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    result = run(args.nodes, args.seed, args.time_scale, args.max_seconds)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
