"""Ray's autoscaler with its built-in AWS provider, then with steadyscale's, same scenario.

Each run starts a fresh emulator (realistic profile, same seed, time scaled down) and drives
Ray's own StandardAutoscaler (node updaters disabled): ask for N workers, update every
5 emulated seconds (Ray's interval) until N run, then ask for 0 until none is left. Ray's
provider reaches the emulator through AWS_ENDPOINT_URL_EC2 with fake credentials; ours
through its ``endpoint_url`` key. Duplicates and leaks come from the emulator's ground truth.
Then each provider is probed right after one ``create_node`` while EC2 lags 30 s: what
``node_tags``, ``internal_ip``, ``is_running``, ``set_node_tags``, ... answer (or raise).

    python benchmarks/ray_compare.py [--workers 100] [--time-scale 0.05] [--seed 0]
                                     [--update-interval 5] [--restart] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from steadyscale.testing.ray_harness import (
    INSTANCE_ACTIONS,
    PROBED,
    PROVIDERS,
    RayScenario,
    probe_fresh_node,
    start_emulator,
)

# The probe's emulator: every view of a new instance lags this many real seconds.
PROBE_LAG = 30.0
QUIET = {"server_error_probability": 0, "lost_response_probability": 0, "timeout_probability": 0}


def probe(kind: str, state_dir: Path) -> dict[str, str]:
    lag = {"median": PROBE_LAG, "p99": PROBE_LAG, "max": PROBE_LAG}
    emulator = start_emulator("realistic", time_scale=1.0, visibility=lag, errors=QUIET)
    try:
        return probe_fresh_node(kind, emulator=emulator, state_dir=state_dir)
    finally:
        emulator.stop()


def run_one(
    kind: str,
    *,
    workers: int,
    time_scale: float,
    seed: int,
    update_interval: float,
    state_dir: Path,
    restart: bool,
) -> dict[str, Any]:
    emulator = start_emulator("realistic", time_scale=time_scale, seed=seed)
    try:
        scenario = RayScenario(
            kind, emulator=emulator, state_dir=state_dir, update_interval=update_interval
        )
        return asdict(scenario.run(workers, restart=restart))
    finally:
        emulator.stop()


def run(
    workers: int, time_scale: float, seed: int, update_interval: float, restart: bool = False
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ray-compare-") as state_dir:
        sides = {
            kind: run_one(
                kind,
                workers=workers,
                time_scale=time_scale,
                seed=seed,
                update_interval=update_interval,
                state_dir=Path(state_dir),
                restart=restart,
            )
            for kind in PROVIDERS
        }
        fresh = {kind: probe(kind, Path(state_dir)) for kind in PROVIDERS}
    ray, ours = sides["ray"], sides["steadyscale"]

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "workers": workers,
        "time_scale": time_scale,
        "seed": seed,
        "update_interval_s": update_interval,
        "profile": "realistic",
        "restart": restart,
        "ray": ray,
        "steadyscale": ours,
        # What each provider answers right after create_node, EC2 lagging PROBE_LAG s.
        "fresh_node": fresh,
        "fresh_node_failures": {
            kind: sum(1 for a in fresh[kind].values() if a != "ok") for kind in PROVIDERS
        },
        # Ratios against the baseline measured in this run (Ray's built-in provider).
        "ratio_time_to_target": ratio(ours["seconds_to_target"], ray["seconds_to_target"]),
        "ratio_instances_launched": ratio(ours["launched"], ray["launched"]),
        "ratio_api_calls": ratio(sum(ours["api_calls"].values()), sum(ray["api_calls"].values())),
    }


def _table(r: dict[str, Any]) -> str:
    ray, ours = r["ray"], r["steadyscale"]

    def seconds(side: dict[str, Any]) -> str:
        value = side["seconds_to_target"]
        return "never" if value is None else f"{value:.1f}"

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = [
        ("update errors", str(ray["update_errors"]), str(ours["update_errors"]), ""),
        (
            f"time to {r['workers']} running (emulated s)",
            seconds(ray),
            seconds(ours),
            fmt(r["ratio_time_to_target"]),
        ),
        (
            "instances launched",
            str(ray["launched"]),
            str(ours["launched"]),
            fmt(r["ratio_instances_launched"]),
        ),
        ("duplicates", str(ray["duplicates"]), str(ours["duplicates"]), ""),
        ("peak instances alive", str(ray["peak_alive"]), str(ours["peak_alive"]), ""),
        ("leaks after scale to 0", str(ray["leaks"]), str(ours["leaks"]), ""),
        ("autoscaler updates", str(ray["updates"]), str(ours["updates"]), ""),
        ("RequestLimitExceeded", str(ray["throttled"]), str(ours["throttled"]), ""),
    ]
    if r["restart"]:
        rows.append(
            (
                "unlisted at the restart",
                str(ray["invisible_at_restart"]),
                str(ours["invisible_at_restart"]),
                "",
            )
        )
    for action in INSTANCE_ACTIONS:
        a, b = ray["api_calls"].get(action, 0), ours["api_calls"].get(action, 0)
        if a or b:
            rows.append((f"API calls: {action}", str(a), str(b), fmt(b / a if a else None)))
    rows.append(
        (
            "API calls: total",
            str(sum(ray["api_calls"].values())),
            str(sum(ours["api_calls"].values())),
            fmt(r["ratio_api_calls"]),
        )
    )
    head = ("measure", "Ray's AWS provider", "steadyscale", "ratio")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(4)]
    lines = [
        f"Ray autoscaler 0 -> {r['workers']} -> 0 workers, realistic profile, seed "
        f"{r['seed']}, time scale {r['time_scale']}, an update every "
        f"{r['update_interval_s']:g} emulated s"
        + (", autoscaler restarted once its launches returned" if r["restart"] else "")
    ]
    for row in [head, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    lines.append("")
    lines.append(
        f"right after create_node (EC2 lags {PROBE_LAG:g} s): Ray's AWS provider"
        f" {r['fresh_node_failures']['ray']} failures, steadyscale"
        f" {r['fresh_node_failures']['steadyscale']}"
    )
    width = max(len(m) for m in PROBED)
    for method in PROBED:
        lines.append(f"  {method.ljust(width)}  ray: {r['fresh_node']['ray'][method]}")
        lines.append(f"  {''.ljust(width)}  steadyscale: {r['fresh_node']['steadyscale'][method]}")
    for kind in ("ray", "steadyscale"):
        for sample in r[kind]["error_samples"]:
            lines.append(f"{kind} error: {sample}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--update-interval",
        type=float,
        default=5.0,
        help="emulated seconds between two autoscaler updates",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="restart Ray's autoscaler as soon as its launches returned",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.time_scale <= 0 or args.update_interval <= 0:
        parser.error("need --workers >= 1, --time-scale > 0 and --update-interval > 0")
    logging.basicConfig(level=logging.CRITICAL)
    result = run(args.workers, args.time_scale, args.seed, args.update_interval, args.restart)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
