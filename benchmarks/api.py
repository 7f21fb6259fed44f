"""A workload driving the autoscaler through its HTTP API, at scale.

N nodes (default 1,000) on the memory backend (the EC2 model in-process, on a virtual
clock: the same figures as the emulator, minutes faster), the API served by uvicorn on
127.0.0.1 on the daemon's ledger. A workload owns a demand entry it changes once a
(virtual) second, lists the nodes and reports usage for every node every 10 s (the nodes
it runs work on busy, the others idle; ``scale_down: reported``), and acks each drain.
The same workload also writes the ledger directly (from its own thread, beside the tick,
as through the API), in 30-second blocks in turn with the API's (both see the same
cluster): the daemon's tick time with and without the API load, in one run (ratio of the
medians; target <= 1.2). Busy
nodes terminated (by the workload's own record; target 0), duplicates and leaks (by the
model's ground truth, after demand drops to zero; 0).

    python benchmarks/api.py --nodes 1000 --minutes 10 [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from steadyscale.api.app import create_app
from steadyscale.api.context import ApiContext
from steadyscale.api.server import ApiServer
from steadyscale.api.tokens import RateLimits, Tokens
from steadyscale.app.loading import model_settings
from steadyscale.app.runtime import assemble_simulation
from steadyscale.config import ClusterConfig, parse_config
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.retries.clock import FakeClock
from steadyscale.store import demand_entries
from steadyscale.store.ledger import Ledger
from steadyscale.store.workload import UsageReport
from steadyscale.testing.audit import audit

TOKEN = "bench-" + "x" * 26
TARGET_TICK_RATIO = 1.2
INTERVAL = 5.0  # the loop's interval (virtual seconds)
USAGE_EVERY = 10  # seconds between usage reports for every node
TTL = 30.0
BATCH = 250  # usage reports per request
BLOCK = 30  # seconds of the workload through the API, then as many straight to the ledger


def _config(nodes: int, ledger: Path) -> ClusterConfig:
    return parse_config(
        {
            "cluster_name": "bench",
            "max_workers": nodes,
            "upscaling_speed": float(nodes),
            "idle_timeout_minutes": 1,
            "loop_interval_seconds": INTERVAL,
            "ledger": str(ledger),
            "provider": {"type": "memory", "emulator": {"profile": "realistic", "seed": 11}},
            "available_node_types": {
                "worker": {
                    "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                    "resources": {"CPU": 2},
                    "max_workers": nodes,
                    "scale_down": "reported",
                },
            },
        }
    )


class Workload:
    """What the workload wants and where it runs, by its own record; it talks to the
    autoscaler through ``http`` (the API) or, without it, straight to the ledger."""

    def __init__(self, nodes: int, ledger: Ledger, clock: FakeClock, seed: int) -> None:
        self.nodes = nodes
        self.ledger = ledger
        self.clock = clock
        self.random = random.Random(seed)
        self.wanted = nodes
        self.busy: dict[str, float] = {}  # node id -> until when its busy report holds
        self.latencies: list[float] = []
        self.by_path: dict[str, list[float]] = {}
        self.http: httpx.Client | None = None

    def second(self, at: int) -> None:
        """The workload's requests of one virtual second."""
        low = int(self.nodes * 0.85)
        self.wanted = max(low, min(self.nodes, self.wanted + self.random.randint(-8, 6)))
        demand = [DemandItem(bundle={"CPU": 2}, count=self.wanted)]
        if self.http is None:
            with self.ledger.transaction():
                demand_entries.set_entry(self.ledger.store, "bench", demand, self.clock.now())
        else:
            body = {"demand": [d.model_dump() for d in demand]}
            self._call("PUT", "/api/v1/demand/entries/bench", body)
        if at % USAGE_EVERY == 0:
            self._report()

    def _report(self) -> None:
        nodes = self._nodes()
        now = self.clock.now()
        for node in nodes:
            if node["status"] == "draining" and node["node_id"] not in self.busy_now(now):
                self._ack(node["node_id"])
        ready = [n["node_id"] for n in nodes if n["status"] == "ready"]
        kept = [n for n in ready if n in self.busy_now(now)]
        fresh = [n for n in sorted(ready) if n not in kept]
        busy = set((kept + fresh)[: self.wanted])
        reports = [{"node": n, "busy": n in busy, "ttl_seconds": TTL} for n in ready]
        for start in range(0, len(reports), BATCH):
            chunk = reports[start : start + BATCH]
            if self.http is None:
                self.ledger.report_usage([UsageReport(**r, reporter="bench") for r in chunk], now)
            else:
                self._call("POST", "/api/v1/usage", {"reports": chunk})
        # A node the workload reports busy stays busy in its record until the TTL passes.
        self.busy = {n: now + TTL for n in busy}

    def busy_now(self, now: float) -> set[str]:
        return {n for n, until in self.busy.items() if until > now}

    def _nodes(self) -> list[dict[str, Any]]:
        if self.http is None:
            return [{"node_id": r.node_id, "status": r.status.value} for r in self.ledger.nodes()]
        # (statuses are all it needs: no history, the cheap list)
        nodes: list[dict[str, Any]] = self._call("GET", "/api/v1/nodes?history=false", None)[
            "nodes"
        ]
        return nodes

    def _ack(self, node_id: str) -> None:
        if self.http is None:
            self.ledger.ack_drain(node_id, "bench", self.clock.now())
        else:
            self._call("POST", f"/api/v1/nodes/{node_id}/drain/ack", None)

    def _call(self, method: str, path: str, body: Any) -> Any:
        assert self.http is not None
        started = time.perf_counter()
        answer = self.http.request(method, path, json=body)
        took = time.perf_counter() - started
        self.latencies.append(took)
        kind = f"{method} {path.split('/')[3]}" + (" ack" if path.endswith("/ack") else "")
        self.by_path.setdefault(kind, []).append(took)
        if answer.status_code >= 400 and not path.endswith("/ack"):
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer.json()


class Bench:
    def __init__(self, nodes: int, tmp: Path) -> None:
        self.config = _config(nodes, tmp / "ledger.db")
        self.clock = FakeClock(1_000_000.0)
        parts = assemble_simulation(self.config, self.clock, model_settings(self.config))
        self.provider = parts.provider
        self.ledger = Ledger(tmp / "ledger.db")
        self.autoscaler = Autoscaler(
            self.config,
            self.provider,
            self.ledger,
            self.clock,
            metrics=parts.metrics,
            health=parts.health,
        )
        # Without the API the workload writes the ledger on a connection of its own, as
        # another process (steadyscale request) does.
        self.workload = Workload(nodes, Ledger(tmp / "ledger.db"), self.clock, seed=7)
        self.busy_terminated = 0
        self._statuses: dict[str, Status] = {}

    def tick(self) -> float:
        started = time.perf_counter()
        self.autoscaler.tick()
        took = time.perf_counter() - started
        now = self.clock.now()
        busy = self.workload.busy_now(now)
        for node_id, record in self.autoscaler.records.items():
            before = self._statuses.get(node_id)
            let_go = record.status in (Status.DRAINING, Status.TERMINATING)
            if let_go and node_id in busy and before in (Status.READY, Status.RUNNING):
                self.busy_terminated += 1
            self._statuses[node_id] = record.status
        return took

    def ramp_up(self, limit: float) -> None:
        nodes = self.workload.nodes
        self.ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=nodes)], self.clock.now())
        end = self.clock.now() + limit
        while self.clock.now() < end:
            self.tick()
            ready = sum(1 for r in self.autoscaler.records.values() if r.status is Status.READY)
            if ready >= nodes:
                return
            self.clock.sleep(INTERVAL)

    def phase(self, seconds: range, pool: ThreadPoolExecutor) -> list[float]:
        """The workload's ``seconds`` (virtual), a tick every INTERVAL; the workload's
        calls run beside the tick, in a thread of their own (as another process would)."""
        ticks: list[float] = []
        for at in seconds:
            pending: Future[None] = pool.submit(self.workload.second, at)
            if at % int(INTERVAL) == 0:
                ticks.append(self.tick())
            pending.result()
            self.clock.sleep(1.0)
        return ticks

    def phases(
        self, api_blocks: int, direct_blocks: int, http: httpx.Client
    ) -> tuple[list[float], list[float]]:
        """Blocks of BLOCK seconds, through the API and straight to the ledger in turn (so
        both see the same cluster), until each has its count: the ticks of each."""
        loaded: list[float] = []
        direct: list[float] = []
        at = 0
        with ThreadPoolExecutor(1) as pool:
            while api_blocks or direct_blocks:
                through_api = api_blocks >= direct_blocks
                self.workload.http = http if through_api else None
                ticks = self.phase(range(at, at + BLOCK), pool)
                (loaded if through_api else direct).extend(ticks)
                if through_api:
                    api_blocks -= 1
                else:
                    direct_blocks -= 1
                at += BLOCK
        self.workload.http = None
        return loaded, direct

    def wind_down(self, limit: float) -> None:
        """Demand nothing, reports lapse: every node goes, by packing."""
        self.ledger.set_demand([], self.clock.now())
        end = self.clock.now() + limit
        while self.clock.now() < end:
            self.tick()
            if not any(i.state.value != "terminated" for i in self._truth()):
                return
            self.clock.sleep(INTERVAL)

    def _truth(self) -> list[Any]:
        return [
            i
            for i in self.provider.truth(include_gone=True)
            if i.tags.get(TAG_CLUSTER) == self.config.cluster_name
        ]

    def checks(self) -> tuple[int, int]:
        truth = self._truth()
        over, unrecorded = audit(
            self.ledger, [(i.instance_id, i.tags.get(TAG_REQUEST, "")) for i in truth]
        )
        leaks = sum(1 for i in truth if i.state.value != "terminated")
        return over + len(unrecorded), leaks


def run(nodes: int, minutes: float, baseline_minutes: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(nodes, Path(tmp))
        context = ApiContext(
            config=bench.config,
            ledger=bench.ledger,
            clock=bench.clock,
            tokens=Tokens({TOKEN: "bench"}, {}),
            limits=RateLimits(100_000.0, 100_000),
            max_body_bytes=10_000_000,
            reader_ledger=Ledger(Path(tmp) / "ledger.db", readonly=True),
        )
        server = ApiServer(create_app(context), "127.0.0.1", 0).start()
        try:
            bench.ramp_up(limit=1800)
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            ) as http:
                loaded, baseline = bench.phases(
                    max(1, round(minutes * 60 / BLOCK)),
                    max(1, round(baseline_minutes * 60 / BLOCK)),
                    http,
                )
            bench.wind_down(limit=3600)
            duplicates, leaks = bench.checks()
        finally:
            server.stop()
            bench.ledger.close()
            bench.workload.ledger.close()
            context.reads.close()
    latencies = sorted(bench.workload.latencies)
    return {
        "api_p50_ms": round(_quantile(latencies, 0.50) * 1000, 2),
        "api_p99_ms": round(_quantile(latencies, 0.99) * 1000, 2),
        "tick_ratio": round(statistics.median(loaded) / statistics.median(baseline), 3),
        "busy_terminated": bench.busy_terminated,
        "duplicates": duplicates,
        "leaks": leaks,
        "_more": {
            "requests": len(latencies),
            "tick_ms_without_api": round(statistics.median(baseline) * 1000, 2),
            "tick_ms_with_api": round(statistics.median(loaded) * 1000, 2),
            "by_request": {
                kind: f"p50 {_quantile(sorted(v), 0.5) * 1000:.1f} ms, "
                f"p99 {_quantile(sorted(v), 0.99) * 1000:.1f} ms ({len(v)})"
                for kind, v in sorted(bench.workload.by_path.items())
            },
        },
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10.0, help="of the API load (virtual)")
    parser.add_argument(
        "--baseline-minutes",
        type=float,
        default=None,
        help="of the same load straight to the ledger, in turn with the API's (default: as long)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    baseline = args.minutes if args.baseline_minutes is None else args.baseline_minutes
    result = run(args.nodes, args.minutes, baseline)
    more = result.pop("_more")
    if args.json:
        print(json.dumps(result))
        return 0
    ok = (
        result["tick_ratio"] <= TARGET_TICK_RATIO
        and result["busy_terminated"] == 0
        and result["duplicates"] == 0
        and result["leaks"] == 0
    )
    rows = [
        ("nodes", str(args.nodes)),
        ("API requests", str(more["requests"])),
        ("API latency p50 / p99", f"{result['api_p50_ms']} ms / {result['api_p99_ms']} ms"),
        (
            "tick (median) without / with the API",
            f"{more['tick_ms_without_api']} ms / {more['tick_ms_with_api']} ms",
        ),
        *[(f"  {kind}", figures) for kind, figures in more["by_request"].items()],
        (f"tick ratio (target <= {TARGET_TICK_RATIO})", str(result["tick_ratio"])),
        ("busy nodes terminated (target 0)", str(result["busy_terminated"])),
        ("duplicates / leaks", f"{result['duplicates']} / {result['leaks']}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("targets met" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
