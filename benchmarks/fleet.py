"""Fleet launches against today's path: N spot nodes, three instance types in three zones,
four of the nine spot pools out of capacity, seeded spot prices.

The real autoscaler runs twice in one invocation, on the in-memory EC2 backend and a
virtual clock (``--backend emulator``: the embedded emulator over HTTP, in real time scaled
by ``--time-scale``): once with today's single-type node type (m5.large, RunInstances pool
by pool, falling back to on-demand when every spot pool of the type is out), once with a
fleet node type (CreateFleet instant across the three types and three subnets,
price-capacity-optimized). The account's API and launch limits are raised tenfold on both
sides (as ``benchmarks/simulate.py`` does), so a launch is not held by EC2's default
instance bucket. For each path it prints:

- the time until all N nodes are ready against the lower bound (each instance's own drawn
  boot and visibility delays after its launch: no autoscaler can beat them), as a ratio;
- launch calls per node (RunInstances, CreateFleet, the launch-template and spot-price
  calls; the observation calls every path makes alike are printed apart);
- the cluster's cost per hour at the end against the cheapest feasible allocation computed
  from ground truth (the pools' capacities and the model's prices: cheapest spot pools
  first, on-demand beyond them), 1.0 being the cheapest;
- duplicates and leaks, by ground truth.

    python benchmarks/fleet.py [--nodes 2000] [--seed 1] [--backend memory|emulator] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from steadyscale.app.runtime import (
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.config import DEFAULT_RATE_LIMITS, ClusterConfig, parse_config
from steadyscale.core.lifecycle import HAS_INSTANCE, NodeRecord, Status
from steadyscale.core.prices import on_demand_price
from steadyscale.core.resources import DemandItem
from steadyscale.emulator import Operation, TrackedInstance
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.retries.clock import FakeClock
from steadyscale.sim.report import audit_fleet
from steadyscale.store.ledger import Ledger

TYPES = ("m5.large", "c5.large", "r5.large")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SUBNETS = ("subnet-a", "subnet-b", "subnet-c")  # the memory backend's zones a, b, c in order
# Four of the nine spot pools have no capacity; each of the other five holds POOL_SHARE.
OUT = ("m5.large/us-east-1a", "m5.large/us-east-1b", "c5.large/us-east-1a", "r5.large/us-east-1c")
POOL_SHARE = 0.3  # of N: the five open pools hold 1.5 N together
LIMITS_SCALE = 10
LAUNCH_CALLS = (
    "RunInstances",
    "CreateFleet",
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "DescribeLaunchTemplateVersions",
    "DescribeSpotPriceHistory",
)
TARGETS = {"ratio": 1.25, "api_calls_per_node": 0.02, "cost_over_cheapest": 1.05}


def _pools(nodes: int) -> dict[str, int]:
    size = max(1, int(nodes * POOL_SHARE))
    return {f"{t}/{z}/spot": (0 if f"{t}/{z}" in OUT else size) for t in TYPES for z in ZONES}


def _config(nodes: int, seed: int, fleet: bool) -> ClusterConfig:
    raised = {
        name: {
            "capacity": limit.capacity * LIMITS_SCALE,
            "refill_per_second": limit.refill_per_second * LIMITS_SCALE,
        }
        for name, limit in DEFAULT_RATE_LIMITS.items()
    }
    node: dict[str, Any] = {
        "resources": {"CPU": 2},
        "max_workers": nodes,
        "market": "spot",
    }
    if fleet:
        node |= {"node_config": {"ImageId": "ami-12345678"}, "instance_types": list(TYPES)}
    else:
        node |= {
            "node_config": {"InstanceType": TYPES[0], "ImageId": "ami-12345678"},
            "spot_fallback_to_on_demand": True,
        }
    return parse_config(
        {
            "cluster_name": "fleet",
            "max_workers": nodes,
            "upscaling_speed": float(nodes),
            "idle_timeout_minutes": 60,
            "loop_interval_seconds": 5,
            "provider": {
                "type": "memory",
                "subnets": list(SUBNETS),
                "rate_limits": raised,
                "emulator": {
                    "profile": "realistic",
                    "seed": seed,
                    "throttling": {"enabled": True, "scale": LIMITS_SCALE},
                    "errors": {
                        "server_error_probability": 0,
                        "lost_response_probability": 0,
                        "timeout_probability": 0,
                    },
                    "spot": {"interruption_rate_per_hour": 0},
                    "capacity": {"pools": _pools(nodes)},
                },
            },
            "available_node_types": {"worker": node},
        }
    )


def ready_at(inst: TrackedInstance) -> float:
    shown = min(inst.visible_at[Operation.DESCRIBE_BY_ID], inst.visible_at[Operation.LISTING])
    return max(inst.running_at or float("inf"), shown)


def cheapest(nodes: int, price: Any, at: float) -> float:
    """The cheapest hourly cost of ``nodes`` nodes: spot pools cheapest first up to their
    capacity, then the cheapest on-demand type for the rest."""
    left, cost = nodes, 0.0
    pools = sorted(
        (price(t, z, "spot", at), size)
        for key, size in _pools(nodes).items()
        for t, z, _ in [key.split("/")]
        if size > 0
    )
    for unit, size in pools:
        take = min(left, size)
        cost += take * unit
        left -= take
    return cost + left * min(on_demand_price(t) or float("inf") for t in TYPES)


def run_memory(nodes: int, seed: int, fleet: bool, max_seconds: float) -> dict[str, Any]:
    clock = FakeClock(1_000_000.0)
    config = _config(nodes, seed, fleet)
    metrics = build_metrics(config, clock)
    provider = build_memory_provider(config, clock, observer=metrics.api_call)
    ledger = Ledger(":memory:")
    health = build_health(memory_prober(config, provider), clock, metrics)
    autoscaler = Autoscaler(config, provider, ledger, clock, metrics=metrics, health=health)
    start = clock.now()
    ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=nodes)], start)
    longest = 0.0
    while clock.now() - start <= max_seconds:
        report = autoscaler.tick()
        longest = max(longest, report.duration)
        clock.advance(config.loop_interval_seconds)
        ready = sum(1 for r in autoscaler.records.values() if r.status is Status.READY)
        if ready >= nodes:
            break
    took = clock.now() - start
    figures = path_figures(
        nodes,
        took=took,
        ready=ready,
        start=start,
        truth=provider.truth(include_gone=True),
        records=autoscaler.records.values(),
        ledger=ledger,
        calls=provider.calls.by_action(),
        price=provider.model.prices.price,
    )
    ledger.close()
    return {**figures, "longest_tick_s": round(longest, 3)}


def path_figures(
    nodes: int,
    *,
    took: float,
    ready: int,
    start: float,
    truth: list[TrackedInstance],
    records: Iterable[NodeRecord],
    ledger: Ledger,
    calls: Mapping[str, Mapping[str, int]],
    price: Any,
) -> dict[str, Any]:
    """One path's figures, whatever the backend: time to capacity against the lower bound,
    calls per node, cost against the cheapest feasible allocation, and the audit."""
    tracked = {r.instance_id for r in records if r.instance_id and r.status in HAS_INSTANCE}
    audit = audit_fleet(ledger, truth, tracked)
    bound = max((ready_at(i) - start for i in truth if i.running_at), default=0.0)
    by_action = {a: sum(o.values()) for a, o in calls.items()}
    launch_calls = sum(by_action.get(a, 0) for a in LAUNCH_CALLS)
    alive = [i for i in truth if i.state.value != "terminated"]
    cost = sum(i.hourly_price or 0.0 for i in alive)
    floor = cheapest(nodes, price, start)
    return {
        "ready": ready,
        "time_to_capacity_s": round(took, 1),
        "lower_bound_s": round(bound, 1),
        "ratio": round(took / bound, 3) if bound > 0 else None,
        "api_calls_per_node": round(launch_calls / nodes, 4),
        "all_api_calls_per_node": round(sum(by_action.values()) / nodes, 4),
        "api_calls": dict(sorted(by_action.items())),
        "cost_per_hour": round(cost, 3),
        "cheapest_per_hour": round(floor, 3),
        "cost_over_cheapest": round(cost / floor, 3) if floor > 0 else None,
        "by_pool": _by_pool(alive),
        "duplicates": audit.duplicates,
        "leaks": audit.leaks,
    }


def _by_pool(alive: list[TrackedInstance]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for inst in alive:
        key = f"{inst.instance_type}/{inst.availability_zone}/{inst.market}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"fleet: {result['nodes']} spot nodes, {len(TYPES)} types x {len(ZONES)} zones, "
        f"{len(OUT)} of 9 pools out of capacity ({result['backend']})"
    ]
    for name in ("single_type", "fleet"):
        r = result[name]
        lines += [
            f"{name}:",
            f"  time to capacity   {r['time_to_capacity_s']} s (bound {r['lower_bound_s']} s, "
            f"ratio {r['ratio']})",
            f"  launch calls/node  {r['api_calls_per_node']} (all calls/node "
            f"{r['all_api_calls_per_node']})",
            f"  cost per hour      ${r['cost_per_hour']} (cheapest ${r['cheapest_per_hour']}, "
            f"x{r['cost_over_cheapest']})",
            f"  pools              {', '.join(f'{k} {v}' for k, v in r['by_pool'].items())}",
            f"  duplicates, leaks  {r['duplicates']}, {r['leaks']}",
        ]
    fleet = result["fleet"]
    met = (
        fleet["ratio"] is not None
        and fleet["ratio"] <= TARGETS["ratio"]
        and fleet["api_calls_per_node"] <= TARGETS["api_calls_per_node"]
        and (fleet["cost_over_cheapest"] or 9) <= TARGETS["cost_over_cheapest"]
        and fleet["duplicates"] == fleet["leaks"] == 0
    )
    lines.append(f"fleet targets: {'met' if met else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", choices=("memory", "emulator"), default="memory")
    parser.add_argument("--time-scale", type=float, default=0.2, dest="time_scale")
    parser.add_argument("--max-seconds", type=float, default=3600.0, dest="max_seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.time_scale <= 0:
        parser.error("--nodes must be >= 1 and --time-scale > 0")
    logging.getLogger("steadyscale").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.backend == "emulator":
        from fleet_emulator import run_emulator  # noqa: PLC0415

        runner = run_emulator
    else:
        runner = run_memory
    result: dict[str, Any] = {"nodes": args.nodes, "seed": args.seed, "backend": args.backend}
    for name, fleet in (("single_type", False), ("fleet", True)):
        result[name] = runner(args.nodes, args.seed, fleet, args.max_seconds)
    result["targets"] = TARGETS
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
