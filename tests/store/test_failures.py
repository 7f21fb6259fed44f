"""The failures status lists, in one query: nodes EC2 refuses to terminate until they are
gone, then the latest moves to a failure status; cheap beside ten thousand nodes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from steadyscale.core.lifecycle import TERMINATE_REFUSED, HistoryEntry, NodeRecord, Status
from steadyscale.store.failures import FAILURES_SQL
from steadyscale.store.ledger import Ledger
from tests.ledgers import LedgerAt

REFUSED = f"{TERMINATE_REFUSED}OperationNotPermitted: protected"


def _node(n: int, status: Status = Status.READY, **fields: Any) -> NodeRecord:
    return NodeRecord(
        node_id=f"n-{n:05}",
        node_type="cpu",
        status=status,
        created_at=float(n),
        instance_id=f"i-{n:05}",
        **fields,
    )


def _terminating(n: int, *, asked: float, error: str | None, accepted: bool = False) -> NodeRecord:
    return _node(
        n,
        Status.TERMINATING,
        terminate_requested_at=asked,
        terminate_accepted_at=asked + 1 if accepted else None,
        last_error=error,
    )


def _ledger(ledger_at: LedgerAt, records: list[NodeRecord], failed: int = 0) -> Ledger:
    ledger = Ledger(ledger_at("ledger.db"))
    entries = [
        (f"n-{n:05}", HistoryEntry(Status.LAUNCH_FAILED, 500.0 + n, f"capacity {n}"))
        for n in range(failed)
    ]
    with ledger.transaction():
        ledger.save_nodes(records, entries)
    return ledger


def test_held_nodes_come_first_newest_first_until_a_terminate_is_accepted(
    ledger_at: LedgerAt,
) -> None:
    ledger = _ledger(
        ledger_at,
        [
            *(_node(n, Status.LAUNCH_FAILED) for n in range(3)),
            _terminating(10, asked=100.0, error=REFUSED),
            _terminating(11, asked=200.0, error=REFUSED),
            _terminating(12, asked=300.0, error=REFUSED, accepted=True),  # protection lifted
            _terminating(13, asked=400.0, error="TerminateInstances: not found yet"),
            _terminating(14, asked=400.0, error=None),
            _node(15, Status.TERMINATED, last_error=REFUSED, terminate_requested_at=1.0),
        ],
        failed=3,
    )
    failures = ledger.recent_failures(5)
    ledger.close()
    assert [(f.node_id, f.held, f.at) for f in failures.held] == [
        ("n-00011", True, 200.0),
        ("n-00010", True, 100.0),
    ]
    assert all(f.status is Status.TERMINATING and f.reason == REFUSED for f in failures.held)
    assert failures.held_total == 2
    assert [(f.node_id, f.reason, f.held) for f in failures.recent] == [
        ("n-00002", "capacity 2", False),
        ("n-00001", "capacity 1", False),
        ("n-00000", "capacity 0", False),
    ]


def test_at_most_limit_held_nodes_are_listed_and_all_are_counted(ledger_at: LedgerAt) -> None:
    ledger = _ledger(
        ledger_at, [_terminating(n, asked=float(n), error=REFUSED) for n in range(1, 9)]
    )
    failures = ledger.recent_failures(5)
    ledger.close()
    assert [f.node_id for f in failures.held] == [f"n-0000{n}" for n in (8, 7, 6, 5, 4)]
    assert (failures.held_total, failures.recent) == (8, [])


def test_nothing_failed_nothing_listed(ledger_at: LedgerAt) -> None:
    failures = _ledger(ledger_at, [_node(1)]).recent_failures(5)
    assert (failures.held, failures.held_total, failures.recent) == ([], 0, [])


def test_held_nodes_are_found_by_the_status_index_beside_ten_thousand_nodes(
    ledger_at: LedgerAt,
) -> None:
    records = [_node(n) for n in range(10_000)]
    records.append(_terminating(10_000, asked=1.0, error=REFUSED))
    ledger = _ledger(ledger_at, records)
    assert ledger.recent_failures(5).held_total == 1
    ledger.close()
    where = ledger_at("ledger.db")
    if not isinstance(where, Path):
        return  # (the query plan below is SQLite's)
    db = sqlite3.connect(where)
    plan = " | ".join(
        row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {FAILURES_SQL}", ("",) * 8).fetchall()
    )
    db.close()
    assert "USING INDEX nodes_by_status" in plan and "SCAN nodes" not in plan, plan
