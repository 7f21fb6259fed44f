"""Crash safety under kill -9: the same scale cycle with and without kills, in one run.

Runs ``steadyscale run`` subprocesses against an emulator in its own process (profile
realistic), scaling 0 -> N -> 0 with demand moving in steps, once undisturbed and once
SIGKILLing the daemon K times (half while scaling up, half while scaling down, some at named
crash points). Prints kills
survived, duplicates and leaks from the emulator's ground truth, and the extra time the
killed run needed to converge compared with the undisturbed one.

    python benchmarks/crash.py [--nodes 300] [--kills 30] [--seed 11] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from steadyscale.testing.chaos import ChaosRun, run_chaos


def _row(run: ChaosRun) -> dict[str, Any]:
    v = run.verdict
    return {
        "kills": run.kills,
        "seconds": round(run.seconds, 2),
        "settle_seconds": round(run.settle_seconds, 2),
        "launched": v.launched,
        "duplicates": v.duplicates,
        "leaks": v.leaks,
        "unrecorded": len(v.unrecorded),
        "crash_points_hit": run.crash_points_hit,
    }


def run(nodes: int, kills: int, seed: int, time_scale: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as calm_dir, tempfile.TemporaryDirectory() as kill_dir:
        calm = run_chaos(Path(calm_dir), nodes=nodes, kills=0, seed=seed, time_scale=time_scale)
        killed = run_chaos(
            Path(kill_dir), nodes=nodes, kills=kills, seed=seed, time_scale=time_scale
        )
    return {
        "nodes": nodes,
        "time_scale": time_scale,
        "without_kills": _row(calm),
        "with_kills": _row(killed),
        "kills_survived": kills,
        "duplicates": killed.verdict.duplicates,
        "leaks": killed.verdict.leaks,
        "extra_seconds_to_converge": round(killed.seconds - calm.seconds, 2),
        "extra_ratio": round(killed.seconds / calm.seconds, 3),
        # After the last kill of each phase, how much longer than an undisturbed daemon
        # the survivor took to finish the phase: the cost of recovering from the ledger.
        "extra_settle_seconds": round(killed.settle_seconds - calm.settle_seconds, 2),
    }


def _table(r: dict[str, Any]) -> str:
    calm, killed = r["without_kills"], r["with_kills"]
    rows = [
        ("", "without kills", "with kills"),
        ("kills", str(calm["kills"]), str(killed["kills"])),
        ("seconds to converge (0 -> N -> 0)", str(calm["seconds"]), str(killed["seconds"])),
        (
            "of which after the last kills",
            str(calm["settle_seconds"]),
            str(killed["settle_seconds"]),
        ),
        ("instances launched", str(calm["launched"]), str(killed["launched"])),
        ("duplicates", str(calm["duplicates"]), str(killed["duplicates"])),
        ("leaks", str(calm["leaks"]), str(killed["leaks"])),
        ("never recorded", str(calm["unrecorded"]), str(killed["unrecorded"])),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"crash safety: 0 -> {r['nodes']} -> 0, emulator time scale {r['time_scale']}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(
        f"extra time with kills: {r['extra_seconds_to_converge']} s in all (the "
        f"killed daemons' own run time included), {r['extra_settle_seconds']} s to "
        "finish after the last kills"
    )
    lines.append(f"crash points hit: {killed['crash_points_hit']}")
    ok = r["duplicates"] == 0 and r["leaks"] == 0 and killed["unrecorded"] == 0
    lines.append(
        f"kills survived: {r['kills_survived']}, "
        f"{'no duplicate, no leak' if ok else 'INVARIANT BROKEN'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--time-scale", type=float, default=0.05, dest="time_scale")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.kills < 0 or args.time_scale <= 0:
        parser.error("need --nodes >= 1, --kills >= 0 and --time-scale > 0")
    result = run(args.nodes, args.kills, args.seed, args.time_scale)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
