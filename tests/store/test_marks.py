"""Node marks (what EC2's events said of a node), on SQLite and on PostgreSQL: the first mark
of a kind is kept and a repeat is not new, they survive a reopen, and go with their node."""

from __future__ import annotations

from steadyscale.store.ledger import Ledger
from steadyscale.store.marks import MarkKind, Marks, NodeMark
from tests.ledgers import LedgerAt


def test_a_mark_is_kept_once_and_survives_a_reopen(ledger_at: LedgerAt) -> None:
    path = ledger_at("marks.db")
    ledger = Ledger(path)
    marks = Marks(ledger.store)
    warned = NodeMark("n-1", MarkKind.WARNED, 10.0, 130.0, "e-1")
    rebalance = NodeMark("n-1", MarkKind.REBALANCE, 5.0, None, "e-2")
    assert marks.add([warned, rebalance, warned]) == [warned, rebalance]
    # The same news again (a duplicate, a redelivery, another event id): nothing new.
    assert marks.add([NodeMark("n-1", MarkKind.WARNED, 11.0, 131.0, "e-3")]) == []
    ledger.close()
    again = Ledger(path)
    assert Marks(again.store).all() == [rebalance, warned]  # by event time
    again.close()


def test_marks_of_finished_nodes_are_forgotten_and_a_cleared_ledger_has_none(
    ledger_at: LedgerAt,
) -> None:
    ledger = Ledger(ledger_at("marks.db"))
    marks = Marks(ledger.store)
    marks.add(
        [
            NodeMark("n-1", MarkKind.RETIREMENT, 1.0, 86400.0, "e-1"),
            NodeMark("n-2", MarkKind.IMPAIRED, 2.0, None, "status:i-2"),
        ]
    )
    marks.forget(["n-1"])
    assert [m.node_id for m in marks.all()] == ["n-2"]
    ledger.clear()
    assert marks.all() == []
    ledger.close()
