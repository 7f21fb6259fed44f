"""A spot cluster under a seeded interruption schedule, run twice in one invocation: with
EC2's events off (polling only) and on (the same schedule; warnings two minutes ahead,
rebalance recommendations before some of them).

The real autoscaler runs on the memory backend on a virtual clock; the model's event feed
reaches the autoscaler through an in-process queue (what EventBridge and SQS do). Demand
stays at the cluster's size throughout; every ``--every`` seconds one running node is
chosen (seeded) to be warned and, two minutes later, reclaimed, and before some of them
a rebalance recommendation comes ``--rebalance-lead`` seconds ahead. For each run:

- capacity_seconds_lost: node-seconds during which serving nodes (ready, or draining
  before EC2 takes them) were fewer than the demand, per interruption scheduled;
- replaced_before_reclaim_share: of the warned interruptions, the share whose replacement
  was ready before EC2 took the node (0 without events: nothing was warned to us);
- describe_calls_per_node_hour: DescribeInstances calls per node-hour of the run;
- duplicates (instances beyond what their launch request asked, I1) and leaks (instances
  still alive after the demand went to zero and the cluster settled, I2).

    python benchmarks/interruptions.py --nodes 500 [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from steadyscale.app.runtime import (
    build_health,
    build_memory_provider,
    build_metrics,
    memory_prober,
)
from steadyscale.config import ClusterConfig, parse_config
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.emulator import build_settings
from steadyscale.errors import CloudError
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.loop.inbox import PolledInbox
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.memory.queue import MemoryQueue
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger

TARGET_CAPACITY_RATIO = 0.10
TARGET_REPLACED_SHARE = 0.90
TARGET_DESCRIBE_RATIO = 1 / 3
TICK = 5.0
WARNING = 120.0
_SERVING = (Status.READY, Status.DRAINING)


def _config(nodes: int, events: bool) -> ClusterConfig:
    data: dict[str, Any] = {
        "cluster_name": "bench",
        "max_workers": 2 * nodes,
        "upscaling_speed": float(nodes),
        "idle_timeout_minutes": 0,
        "loop_interval_seconds": TICK,
        "provider": {"type": "memory", "subnets": ["subnet-aaaa", "subnet-bbbb", "subnet-cccc"]},
        "available_node_types": {
            "spot": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 2 * nodes,
                "market": "spot",
            }
        },
    }
    if events:
        data["events"] = {
            "queue_name": "bench-events",
            "full_listing_interval_seconds": 300,
            "max_rebalance_replacements": 10,
        }
    return parse_config(data)


@dataclass
class Plan:
    """The interruption schedule: (time after the start, kind, which running node)."""

    steps: list[tuple[float, str, int]] = field(default_factory=list)

    @staticmethod
    def draw(seed: int, count: int, every: float, share: float, lead: float) -> Plan:
        rng = random.Random(seed)
        steps: list[tuple[float, str, int]] = []
        for k in range(count):
            warn_at = 300.0 + lead + k * every
            pick = rng.randrange(1 << 30)
            if rng.random() < share:
                steps.append((warn_at - lead, "rebalance", pick))
            steps.append((warn_at, "warn", pick))
        return Plan(sorted(steps))


@dataclass
class Run:
    """One run's cluster on the virtual clock."""

    nodes: int
    events: bool
    seed: int
    clock: FakeClock = field(default_factory=lambda: FakeClock(1_700_000_000.0))
    lost: float = 0.0
    node_seconds: float = 0.0
    warned: int = 0
    chosen: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = _config(self.nodes, self.events)
        settings = build_settings(
            profile="realistic",
            overrides={
                "seed": self.seed,
                "spot": {"interruption_rate_per_hour": 0},
                "errors": {
                    "server_error_probability": 0,
                    "lost_response_probability": 0,
                    "timeout_probability": 0,
                },
                "events": {"warning_seconds": WARNING},
            },
        )
        self.metrics = build_metrics(self.config, self.clock)
        self.memory: MemoryProvider = build_memory_provider(
            self.config, self.clock, settings, observer=self.metrics.api_call
        )
        self.queue = MemoryQueue(self.clock, visibility_timeout=30)
        inbox = PolledInbox(self.queue, max_messages=10, on_error=_raise) if self.events else None
        self.ledger = Ledger(":memory:")
        health = build_health(memory_prober(self.config, self.memory), self.clock, self.metrics)
        self.autoscaler = Autoscaler(
            self.config,
            self.memory,
            self.ledger,
            self.clock,
            metrics=self.metrics,
            health=health,
            inbox=inbox,
        )

    def tick(self, demand: int) -> Any:
        report = self.autoscaler.tick()
        feed = self.memory.model.notices.feed
        for event in feed.due(self.clock.now()):
            if self.events:
                self.queue.send(json.dumps(event.envelope()))
        counts = Counter(r.status for r in self.autoscaler.records.values())
        serving = sum(counts[s] for s in _SERVING)
        self.lost += max(0, demand - serving) * TICK
        self.node_seconds += sum(1 for i in self.alive()) * TICK
        self.clock.advance(TICK)
        return report

    def alive(self) -> list[Any]:
        return [
            i
            for i in self.memory.truth(include_gone=False)
            if i.tags.get(TAG_CLUSTER) == "bench" and i.state.value != "terminated"
        ]

    def act(self, kind: str, pick: int) -> None:
        """The schedule's step: a rebalance recommendation for a running node, or the
        warning (and so the interruption) of the node picked then, else another."""
        running = sorted(i.instance_id for i in self.alive() if i.state.value == "running")
        if not running:
            return
        notices = self.memory.model.notices
        now = self.clock.now()
        victim = self.chosen.get(pick)
        if victim is None or kind == "rebalance" or victim not in running:
            victim = running[pick % len(running)]
            self.chosen[pick] = victim
        if kind == "rebalance":
            notices.recommend_rebalance([victim], now)
        else:
            self.warned += len(notices.warn([victim], now))


def _raise(exc: CloudError) -> None:
    raise RuntimeError(f"the in-process queue failed: {exc}")


def measure(run: Run, plan: Plan, minutes: float) -> dict[str, Any]:
    start = run.clock.now()
    run.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=run.nodes)], start)
    steps = list(plan.steps)
    # Up first; the schedule starts counting once the cluster is ready.
    for _ in range(400):
        if run.tick(run.nodes).capacity_met:
            break
    run.lost, run.node_seconds = 0.0, 0.0
    describe_before = run.memory.calls.count("DescribeInstances")
    begun = run.clock.now()
    while run.clock.now() - begun < minutes * 60:
        while steps and steps[0][0] <= run.clock.now() - begun:
            _, kind, pick = steps.pop(0)
            run.act(kind, pick)
        run.tick(run.nodes)
    describe = run.memory.calls.count("DescribeInstances") - describe_before
    node_hours = run.node_seconds / 3600.0
    lost = run.lost
    registry = run.metrics.registry
    replaced = registry.get_sample_value("steadyscale_replacements_ready_before_reclaim_total")
    interruptions = sum(1 for s in plan.steps if s[1] == "warn")
    figures = {
        "interruptions": interruptions,
        "warned": run.warned,
        "capacity_seconds_lost": lost / max(1, interruptions),
        "replaced_before_reclaim_share": (replaced or 0.0) / max(1, run.warned),
        "describe_calls_per_node_hour": describe / node_hours if node_hours else 0.0,
        "describe_calls": describe,
    }
    figures.update(_invariants(run))
    return figures


def _invariants(run: Run) -> dict[str, int]:
    """I1 (no instance beyond what its request asked) and I2 (nothing alive once the
    demand is gone and the cluster settled)."""
    run.ledger.set_demand([], run.clock.now())
    for _ in range(600):
        report = run.tick(0)
        if report.settled and not run.alive():
            break
    asked = {r.request_id: r.count for r in run.ledger.requests()}
    launched = Counter(
        i.tags.get(TAG_REQUEST, "")
        for i in run.memory.truth(include_gone=True)
        if i.tags.get(TAG_CLUSTER) == "bench"
    )
    duplicates = sum(max(0, n - asked.get(rid, 0)) for rid, n in launched.items())
    return {"duplicates": duplicates, "leaks": len(run.alive())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--interruptions", type=int, default=40)
    parser.add_argument("--every", type=float, default=60.0, help="seconds between two")
    parser.add_argument("--rebalance-share", type=float, default=0.5)
    parser.add_argument("--rebalance-lead", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    plan = Plan.draw(
        args.seed, args.interruptions, args.every, args.rebalance_share, args.rebalance_lead
    )
    minutes = (plan.steps[-1][0] + 2 * WARNING + 120.0) / 60.0 if plan.steps else 5.0
    off = measure(Run(args.nodes, False, args.seed), plan, minutes)
    on = measure(Run(args.nodes, True, args.seed), plan, minutes)
    report = {
        "nodes": args.nodes,
        "events_off": off,
        "events_on": on,
        "capacity_lost_ratio": _ratio(on["capacity_seconds_lost"], off["capacity_seconds_lost"]),
        "describe_calls_ratio": _ratio(
            on["describe_calls_per_node_hour"], off["describe_calls_per_node_hour"]
        ),
    }
    if args.json:
        print(json.dumps(report))
        return 0
    _print(report)
    return 0


def _ratio(on: float, off: float) -> float:
    return on / off if off else (0.0 if not on else float("inf"))


def _print(report: dict[str, Any]) -> None:
    print(f"{report['nodes']} spot nodes, {report['events_on']['interruptions']} interruptions")
    for name in ("events_off", "events_on"):
        r = report[name]
        print(
            f"  {name:<10} capacity lost {r['capacity_seconds_lost']:7.1f} node-s/interruption"
            f"  replaced before reclaim {r['replaced_before_reclaim_share']:5.0%}"
            f"  DescribeInstances {r['describe_calls_per_node_hour']:6.3f}/node-hour"
            f"  duplicates {r['duplicates']}  leaks {r['leaks']}"
        )
    print(
        f"  capacity lost on/off {report['capacity_lost_ratio']:.3f} "
        f"(target <= {TARGET_CAPACITY_RATIO}); DescribeInstances on/off "
        f"{report['describe_calls_ratio']:.3f} (target <= {TARGET_DESCRIBE_RATIO:.3f}); "
        f"replaced before reclaim {report['events_on']['replaced_before_reclaim_share']:.0%} "
        f"(target >= {TARGET_REPLACED_SHARE:.0%})"
    )


if __name__ == "__main__":
    sys.exit(main())
