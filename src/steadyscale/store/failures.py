"""What ``status`` lists as failures, read from the ledger in one query: the nodes EC2
refuses to terminate (held until they are gone, however old the refusal) and the latest
moves to a failure status (launch failed, interrupted, lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from steadyscale.core.lifecycle import TERMINATE_REFUSED, Status
from steadyscale.store.storage import Storage


@dataclass(frozen=True)
class Failure:
    """A node's move to a failure status, or (``held``) a node whose termination EC2
    refuses: then ``at`` is when its termination was asked, ``reason`` EC2's refusal."""

    node_id: str
    node_type: str | None
    instance_id: str | None
    status: Status
    at: float
    reason: str
    held: bool = False


@dataclass(frozen=True)
class Failures:
    """The newest held nodes (``held_total`` in all), and the latest failure moves."""

    held: list[Failure]
    held_total: int
    recent: list[Failure]


# A node is held while it is terminating, its last error is EC2's refusal and no later
# terminate was accepted (an accepted one sets terminate_accepted_at; the terminator never
# clears last_error). Terminating nodes are found by the status index, however many others
# the ledger holds; the count of all held ones comes with the rows.
FAILURES_SQL = """
SELECT * FROM (
    SELECT node_id, node_type, instance_id, status, terminate_requested_at AS at,
        last_error AS reason, 1 AS held, terminate_requested_at AS rank,
        COUNT(*) OVER () AS total
    FROM nodes
    WHERE status = ? AND terminate_accepted_at IS NULL AND substr(last_error, 1, ?) = ?
    ORDER BY terminate_requested_at DESC, node_id LIMIT ?
) AS held_nodes
UNION ALL
SELECT * FROM (
    SELECT t.node_id, n.node_type, n.instance_id, t.status, t.at, t.reason, 0, t.id, 0
    FROM transitions t LEFT JOIN nodes n ON n.node_id = t.node_id
    WHERE t.status IN (?, ?, ?) ORDER BY t.id DESC LIMIT ?
) AS failure_moves
ORDER BY held DESC, rank DESC
"""


def read_failures(db: Storage, limit: int) -> Failures:
    """Up to ``limit`` held nodes and ``limit`` failure moves, each newest first."""
    rows = db.rows(
        FAILURES_SQL,
        (
            Status.TERMINATING.value,
            len(TERMINATE_REFUSED),
            TERMINATE_REFUSED,
            limit,
            Status.LAUNCH_FAILED.value,
            Status.INTERRUPTED.value,
            Status.LOST.value,
            limit,
        ),
    )
    failures = [
        Failure(
            node_id=r["node_id"],
            node_type=r["node_type"],
            instance_id=r["instance_id"],
            status=Status(r["status"]),
            at=r["at"] if r["at"] is not None else 0.0,
            reason=r["reason"],
            held=bool(r["held"]),
        )
        for r in rows
    ]
    held = [f for f in failures if f.held]
    return Failures(
        held=held,
        held_total=int(rows[0]["total"]) if held else 0,
        recent=[f for f in failures if not f.held],
    )
