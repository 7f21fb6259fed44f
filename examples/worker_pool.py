"""A small worker pool driven by steadyscale's HTTP API (``steadyscale.client``).

A queue of jobs, each needing one bundle (``--bundle CPU=2``) for ``--job-seconds``. The
pool asks steadyscale for as many bundles as it has jobs queued or running (its own demand
entry, so other workloads keep theirs), runs jobs on ready nodes only, reports every node's
usage (busy with which bundles, or idle) so a busy node is never scaled down, and lets a
draining node go (acks its drain) once its last job has finished. When the queue is empty it
removes its demand and keeps acking drains until its nodes are gone or ``--duration`` ends.

    steadyscale run cluster.yaml          # with an `api:` block, and a token:
    export STEADYSCALE_API_TOKEN=...      #   the same variable for both
    python examples/worker_pool.py --url http://127.0.0.1:8470 --jobs 40

For the busy nodes to be protected, the node type says ``scale_down: reported``; for the
drain to wait for the pool, it has a ``drain:`` block (see the user guide).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

from steadyscale.client import ApiError, Client, DemandItem, UsageReportIn

DRAINING = "draining"
READY = "ready"


@dataclass
class Pool:
    """The pool's own record: jobs waiting, jobs running (by node), what it did."""

    bundle: dict[str, float]
    slots: int  # jobs a node runs at once
    job_seconds: float
    queued: int
    running: dict[str, list[float]] = field(default_factory=dict)  # node -> jobs' ends
    done: int = 0
    lost: int = 0  # jobs on a node that went away under them (never expected)
    acked: list[str] = field(default_factory=list)
    nodes_used: set[str] = field(default_factory=set)
    demanded: int | None = None

    def finish(self, now: float) -> None:
        for node, ends in self.running.items():
            left = [end for end in ends if end > now]
            self.done += len(ends) - len(left)
            self.running[node] = left

    def place(self, ready: list[str], now: float) -> None:
        """Queued jobs onto free slots of ready nodes (never a draining one)."""
        for node in ready:
            jobs = self.running.setdefault(node, [])
            while self.queued and len(jobs) < self.slots:
                jobs.append(now + self.job_seconds)
                self.queued -= 1
                self.nodes_used.add(node)

    def forget_gone(self, live: set[str]) -> None:
        for node in [n for n in self.running if n not in live]:
            self.lost += len(self.running.pop(node))

    @property
    def busy(self) -> int:
        return sum(len(jobs) for jobs in self.running.values())


def one_round(api: Client, pool: Pool, entry: str, ttl: float) -> int:
    """Look at the nodes, run and finish jobs, say what the pool needs and uses, let
    drained nodes go. How many of its nodes are still up."""
    now = time.monotonic()
    nodes = {n.node_id: n.status for n in api.nodes()}
    pool.forget_gone({n for n, s in nodes.items() if s in (READY, DRAINING)})
    pool.finish(now)
    pool.place([n for n, s in nodes.items() if s == READY], now)
    wanted = pool.queued + pool.busy
    if wanted != pool.demanded:
        items = [DemandItem(bundle=pool.bundle, count=wanted)] if wanted else []
        api.set_entry(entry, items)
        pool.demanded = wanted
    up = [n for n, s in nodes.items() if s in (READY, DRAINING)]
    if up:
        reports = [
            UsageReportIn(
                node=n,
                busy=bool(pool.running.get(n)),
                bundles=[pool.bundle] * len(pool.running.get(n, [])),
                ttl_seconds=ttl,
            )
            for n in up
        ]
        try:
            api.report_usage(reports)
        except ApiError as exc:
            if exc.status != 404:  # (a node went away since the listing: next round)
                raise
    for node in up:
        if nodes[node] == DRAINING and not pool.running.get(node) and node not in pool.acked:
            api.ack_drain(node)
            pool.acked.append(node)
    return len(up)


def parse_bundle(text: str) -> dict[str, float]:
    try:
        pairs = [part.split("=", 1) for part in text.split(",")]
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise SystemExit(f"--bundle {text!r}: write it as CPU=2 or CPU=4,GPU=1") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8470")
    parser.add_argument("--token-env", default="STEADYSCALE_API_TOKEN")
    parser.add_argument("--entry", default="worker-pool", help="the pool's demand entry")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--bundle", type=parse_bundle, default={"CPU": 2.0})
    parser.add_argument("--slots", type=int, default=2, help="jobs a node runs at once")
    parser.add_argument("--job-seconds", type=float, default=5.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--ttl", type=float, default=60.0, help="usage reports hold this long")
    parser.add_argument("--duration", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    pool = Pool(args.bundle, args.slots, args.job_seconds, queued=args.jobs)
    deadline = time.monotonic() + args.duration
    with Client(args.url, token=os.environ.get(args.token_env)) as api:
        try:
            while time.monotonic() < deadline:
                up = one_round(api, pool, args.entry, args.ttl)
                if pool.queued == 0 and pool.busy == 0 and up == 0:
                    break
                time.sleep(args.interval)
        except ApiError as exc:
            print(f"worker_pool: {exc}", file=sys.stderr)
            return 2
    summary = {
        "jobs_done": pool.done,
        "jobs_left": pool.queued + pool.busy,
        "jobs_lost": pool.lost,
        "nodes_used": len(pool.nodes_used),
        "drains_acked": len(pool.acked),
    }
    print(json.dumps(summary) if args.json else "  ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
