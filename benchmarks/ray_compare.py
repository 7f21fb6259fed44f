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
import contextlib
import json
import logging
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray.autoscaler._private.providers import _get_node_provider
from ray.autoscaler.tags import (
    NODE_KIND_WORKER,
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.emulator import Emulator
from steadyscale.testing.ray_harness import (
    AMI,
    INSTANCE_ACTIONS,
    PROVIDERS,
    RayScenario,
    aws_endpoint,
    counting_ray_errors,
    provider_config,
    start_emulator,
)

# The probe's emulator: every view of a new instance lags this many real seconds.
PROBE_LAG = 30.0
QUIET = {"server_error_probability": 0, "lost_response_probability": 0, "timeout_probability": 0}
# What Ray's autoscaler asks a node provider about a node it has just created.
PROBED = (
    "non_terminated_nodes",
    "node_tags",
    "internal_ip",
    "is_running",
    "is_terminated",
    "set_node_tags",
    "set_node_tags again",
)


def probe_fresh_node(
    kind: str, *, emulator: Emulator, state_dir: Path, hang_after: float = 5.0
) -> dict[str, str]:
    """Create one worker, then at once ask the provider what Ray's autoscaler asks about it.

    Each answer is ``ok``, what is wrong with the answer, the exception's type and first
    line, or ``hung`` when the call has not returned after ``hang_after`` real seconds (it
    is left running in a daemon thread). Meant for an emulator whose lag outlasts the probe.
    """
    name = f"probe-{emulator.port}"
    ec2 = emulator.client()
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    config = provider_config(kind, emulator=emulator, state_dir=state_dir)
    tags = {
        TAG_RAY_NODE_KIND: NODE_KIND_WORKER,
        TAG_RAY_USER_NODE_TYPE: "worker",
        "ray-launch-config": "probe",
        "ray-node-name": f"ray-{name}-worker",
    }
    answers: dict[str, str] = {}
    env = aws_endpoint(emulator.endpoint_url) if kind == "ray" else contextlib.nullcontext()
    with counting_ray_errors(), env, contextlib.redirect_stdout(sys.stderr):
        provider = _get_node_provider(config, name, use_cache=False)
        provider.create_node(
            {"InstanceType": "m5.large", "ImageId": AMI, "SubnetIds": [subnet]}, tags, 1
        )
        (node_id,) = [
            i.instance_id for i in emulator.truth() if i.tags.get(TAG_RAY_CLUSTER_NAME) == name
        ]
        calls: dict[str, Any] = {
            "non_terminated_nodes": lambda: (
                None
                if node_id in provider.non_terminated_nodes({})
                else _Finding("omits the new node")
            ),
            "node_tags": lambda: provider.node_tags(node_id),
            "internal_ip": lambda: provider.internal_ip(node_id),
            "is_running": lambda: provider.is_running(node_id),
            "is_terminated": lambda: provider.is_terminated(node_id),
            "set_node_tags": lambda: provider.set_node_tags(node_id, {"ray-node-status": "a"}),
            "set_node_tags again": lambda: provider.set_node_tags(
                node_id, {"ray-node-status": "b"}
            ),
        }
        for label, call in calls.items():
            answers[label] = _answer(call, hang_after)
    return answers


class _Finding(str):
    """A call returned, but its answer is wrong."""

    __slots__ = ()


def _answer(call: Any, hang_after: float) -> str:
    result: list[str] = []

    def run() -> None:
        try:
            value = call()
            result.append(value if isinstance(value, _Finding) else "ok")
        except Exception as exc:  # what the provider raised is the finding
            first = str(exc).splitlines()[0][:100] if str(exc) else ""
            result.append(f"{type(exc).__name__}: {first}".rstrip(": "))

    thread = threading.Thread(target=run, daemon=True, name="ray-probe")
    thread.start()
    thread.join(hang_after)
    return result[0] if result else "hung"


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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The comparison's rows: measure, Ray's AWS provider, steadyscale, ratio."""
    ray, ours = r["ray"], r["steadyscale"]

    def seconds(side: dict[str, Any]) -> str:
        value = side["seconds_to_target"]
        return "never" if value is None else f"{value:.1f}"

    rows = [
        ("update errors", str(ray["update_errors"]), str(ours["update_errors"]), ""),
        (
            f"time to {r['workers']} running (emulated s)",
            seconds(ray),
            seconds(ours),
            _fmt(r["ratio_time_to_target"]),
        ),
        (
            "instances launched",
            str(ray["launched"]),
            str(ours["launched"]),
            _fmt(r["ratio_instances_launched"]),
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
            rows.append((f"API calls: {action}", str(a), str(b), _fmt(b / a if a else None)))
    rows.append(
        (
            "API calls: total",
            str(sum(ray["api_calls"].values())),
            str(sum(ours["api_calls"].values())),
            _fmt(r["ratio_api_calls"]),
        )
    )
    return rows


def _table(r: dict[str, Any]) -> str:
    rows = _rows(r)
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
    lines.extend(_probe_lines(r))
    for kind in ("ray", "steadyscale"):
        for sample in r[kind]["error_samples"]:
            lines.append(f"{kind} error: {sample}")
    return "\n".join(lines)


def _probe_lines(r: dict[str, Any]) -> list[str]:
    """What each provider answered right after create_node."""
    lines = [
        f"right after create_node (EC2 lags {PROBE_LAG:g} s): Ray's AWS provider"
        f" {r['fresh_node_failures']['ray']} failures, steadyscale"
        f" {r['fresh_node_failures']['steadyscale']}"
    ]
    width = max(len(m) for m in PROBED)
    for method in PROBED:
        lines.append(f"  {method.ljust(width)}  ray: {r['fresh_node']['ray'][method]}")
        lines.append(f"  {''.ljust(width)}  steadyscale: {r['fresh_node']['steadyscale'][method]}")
    return lines


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
