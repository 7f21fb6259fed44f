"""Failover of replicas: two ``steadyscale run`` on one PostgreSQL ledger, the leader
SIGKILLed at seeded moments while demand rises and falls, against the same schedule
undisturbed, in one run.

An emulator and a PostgreSQL server run as processes of their own; each run gets a fresh
emulator and database. Demand follows a wave up to N bundles and back to 0; in the
disturbed run the leader is killed K times (a fresh replica replaces each, so two always
run). Prints the takeover time of each kill (from the kill until another replica's
``steadyscale_leader`` gauge reads 1) against its bound (the lease TTL plus one loop
interval), the capacity-seconds lost against the undisturbed run (instances running, each
moment capped at the demand then, integrated over the schedule, real seconds), and from
the emulator's ground truth and call log: duplicates, leaks, and whether two replicas
ever acted on EC2 in the same instant.

    python benchmarks/failover.py [--nodes 300] [--kills 10] [--seed 13] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from steadyscale.testing.failover import LEAD_IN, ScheduleRun, kill_moments, run_schedule, wave
from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.replicas import ReplicaCluster, Timings

# Between kills: a takeover, and the replacement replica started and following.
SPACING_OVER_BOUND = 2.5


def _one(
    server: PostgresServer,
    *,
    nodes: int,
    kills_at: list[float],
    seconds: float,
    seed: int,
    time_scale: float,
    timings: Timings,
) -> ScheduleRun:
    with (
        tempfile.TemporaryDirectory() as workdir,
        ReplicaCluster(
            Path(workdir),
            replicas=2,
            postgres=server,
            timings=timings,
            time_scale=time_scale,
            seed=seed,
        ) as cluster,
    ):
        return run_schedule(cluster, wave(nodes, seconds), kills_at, seconds)


def _side(run: ScheduleRun, time_scale: float) -> dict[str, Any]:
    v = run.verdict
    gap = v.acting.min_gap
    return {
        "kills": run.kills,
        "capacity_seconds": round(run.delivered, 1),
        "seconds_beyond_demand": round(run.beyond_demand, 1),
        "launched": v.launched,
        "duplicates": v.duplicates,
        "leaks": v.leaks,
        "unrecorded": len(v.unrecorded),
        "overlaps": [o.describe() for o in v.acting.overlaps],
        # Handovers quieter than half the margin: two actors, even if never at once.
        "hurried_handovers": [h.describe() for h in v.acting.hurried(v.handover_floor or 0)],
        "replicas_acted": len(v.acting.replicas),
        "handovers": max(0, len(v.acting.terms) - 1),
        # The quiet time between one replica's last mutation and another's first, real s.
        "min_handover_gap_s": None if gap is None else round(gap * time_scale, 3),
    }


def run(nodes: int, kills: int, seed: int, time_scale: float, timings: Timings) -> dict[str, Any]:
    bound = timings.takeover_bound
    spacing = bound + SPACING_OVER_BOUND
    # A quarter more than the kills need: room for the seed to place them.
    seconds = max(20.0, 2 * LEAD_IN + 1.25 * kills * spacing)
    kills_at = kill_moments(kills, seconds, spacing, random.Random(seed))
    with PostgresServer() as server:
        common: dict[str, Any] = {
            "nodes": nodes,
            "seconds": seconds,
            "seed": seed,
            "time_scale": time_scale,
            "timings": timings,
        }
        calm = _one(server, kills_at=[], **common)
        killed = _one(server, kills_at=kills_at, **common)
    takeovers = killed.takeovers
    return {
        "nodes": nodes,
        "replicas": 2,
        "schedule_seconds": seconds,
        "time_scale": time_scale,
        "lease_ttl_s": timings.lease_ttl_seconds,
        "loop_interval_s": timings.interval_seconds,
        "kill_moments_s": kills_at,
        "takeover_s": [round(t, 3) for t in takeovers],
        "takeover_median_s": round(statistics.median(takeovers), 3) if takeovers else None,
        "takeover_max_s": round(max(takeovers), 3) if takeovers else None,
        "takeover_bound_s": bound,
        "takeovers_within_bound": sum(1 for t in takeovers if t <= bound),
        "undisturbed": _side(calm, time_scale),
        "with_kills": _side(killed, time_scale),
        "capacity_seconds_lost": round(calm.delivered - killed.delivered, 1),
        "capacity_lost_ratio": round(1 - killed.delivered / calm.delivered, 4)
        if calm.delivered
        else None,
        "duplicates": killed.verdict.duplicates,
        "leaks": killed.verdict.leaks,
        "overlaps": len(killed.verdict.acting.overlaps),
        "hurried_handovers": len(killed.verdict.acting.hurried(killed.verdict.handover_floor or 0)),
    }


def _table(r: dict[str, Any]) -> str:
    calm, killed = r["undisturbed"], r["with_kills"]
    lines = [
        f"failover: 2 replicas, demand 0 -> {r['nodes']} -> 0 in a wave over "
        f"{r['schedule_seconds']:.0f} s, lease TTL {r['lease_ttl_s']:g} s, loop "
        f"{r['loop_interval_s']:g} s, emulator time scale {r['time_scale']}",
        "takeover per kill (s): " + ", ".join(f"{t:.2f}" for t in r["takeover_s"]),
        f"takeover median {r['takeover_median_s']} s, max {r['takeover_max_s']} s, bound "
        f"{r['takeover_bound_s']:g} s (lease TTL + one loop interval): "
        f"{r['takeovers_within_bound']} of {len(r['takeover_s'])} within",
    ]
    rows = [
        ("", "undisturbed", "leader killed"),
        ("kills", str(calm["kills"]), str(killed["kills"])),
        ("capacity-seconds", str(calm["capacity_seconds"]), str(killed["capacity_seconds"])),
        (
            "instance-seconds beyond demand",
            str(calm["seconds_beyond_demand"]),
            str(killed["seconds_beyond_demand"]),
        ),
        ("instances launched", str(calm["launched"]), str(killed["launched"])),
        ("duplicates", str(calm["duplicates"]), str(killed["duplicates"])),
        ("leaks", str(calm["leaks"]), str(killed["leaks"])),
        ("replicas that acted", str(calm["replicas_acted"]), str(killed["replicas_acted"])),
        (
            "narrowest handover (s)",
            str(calm["min_handover_gap_s"]),
            str(killed["min_handover_gap_s"]),
        ),
        ("acting in the same instant", str(len(calm["overlaps"])), str(len(killed["overlaps"]))),
        (
            "handovers quieter than margin/2",
            str(len(calm["hurried_handovers"])),
            str(len(killed["hurried_handovers"])),
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.append(
        f"capacity-seconds lost to the kills: {r['capacity_seconds_lost']} "
        f"({(r['capacity_lost_ratio'] or 0) * 100:.1f}% of the undisturbed run)"
    )
    ok = not (r["duplicates"] or r["leaks"] or r["overlaps"] or r["hurried_handovers"])
    lines.append("no duplicate, no leak, one actor at a time" if ok else "INVARIANT BROKEN")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--time-scale", type=float, default=0.05, dest="time_scale")
    parser.add_argument("--lease-ttl", type=float, default=3.0, dest="lease_ttl")
    parser.add_argument("--loop-interval", type=float, default=0.5, dest="loop_interval")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.kills < 0 or args.time_scale <= 0:
        parser.error("need --nodes >= 1, --kills >= 0 and --time-scale > 0")
    if args.lease_ttl < 1.5 or args.loop_interval <= 0:
        parser.error(
            "need --lease-ttl >= 1.5 (renewal and margin fit inside it) and --loop-interval > 0"
        )
    ttl = args.lease_ttl
    timings = Timings(
        lease_ttl_seconds=ttl,
        renew_interval_seconds=ttl / 3,
        margin_seconds=ttl / 3,
        interval_seconds=args.loop_interval,
    )
    result = run(args.nodes, args.kills, args.seed, args.time_scale, timings)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
