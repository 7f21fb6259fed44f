"""What ``steadyscale status`` shows: nodes by type and status, demand, failures, and the
oldest instance EC2 does not show yet. Read straight from the ledger."""

from __future__ import annotations

import time
from typing import Any

from steadyscale.config import ClusterConfig, format_bundle
from steadyscale.ledger import Ledger
from steadyscale.lifecycle import Status

COLUMNS = [s.value for s in (Status.QUEUED, Status.REQUESTED, Status.LAUNCHED, Status.PENDING,
                             Status.RUNNING, Status.READY, Status.TERMINATING, Status.INTERRUPTED,
                             Status.LOST)]


def collect_status(config: ClusterConfig, ledger: Ledger, now: float | None = None) -> dict[
        str, Any]:
    moment = time.time() if now is None else now
    counts = ledger.counts_by_status()
    invisible = [r for r in ledger.nodes() if r.status is Status.LAUNCHED]
    oldest = min(invisible, key=lambda r: r.launched_at or moment, default=None)
    return {
        "cluster_name": config.cluster_name,
        "node_types": {
            name: {
                "instance_type": t.instance_type,
                "min_workers": t.min_workers,
                "max_workers": t.max_workers,
                "counts": {c: counts.get(name, {}).get(c, 0) for c in COLUMNS},
            }
            for name, t in config.available_node_types.items()
        },
        "demand": [{"bundle": i.bundle, "count": i.count} for i in ledger.demand()],
        "recent_failures": [{"node_id": n, "at": at, "reason": reason}
                            for n, at, reason in ledger.recent_failures()],
        "oldest_not_visible": None if oldest is None else {
            "node_id": oldest.node_id,
            "instance_id": oldest.instance_id,
            "seconds_since_launch": round(moment - (oldest.launched_at or moment), 1),
        },
    }


def render_status(status: dict[str, Any]) -> str:
    head = ["node type", "instance", *COLUMNS]
    rows = [[name, info["instance_type"], *(str(info["counts"][c]) for c in COLUMNS)]
            for name, info in status["node_types"].items()]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"cluster {status['cluster_name']}"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
              for row in [head, *rows]]
    demand = ", ".join(f"{d['count']} x {format_bundle(d['bundle'])}"
                       for d in status["demand"]) or "none"
    lines.append(f"demand: {demand}")
    oldest = status["oldest_not_visible"]
    if oldest:
        lines.append(f"oldest not yet visible: {oldest['instance_id']} "
                     f"({oldest['seconds_since_launch']}s since launch)")
    for failure in status["recent_failures"]:
        lines.append(f"recent: {failure['node_id']}: {failure['reason']}")
    return "\n".join(lines) + "\n"
