"""The mover: the reconciler's moves applied in one write; a bare sighting is not written."""

from __future__ import annotations

from steadyscale.core.lifecycle import CLEAR, NodeUpdate, Status
from steadyscale.core.reconciler import Move
from steadyscale.loop.book import NodeBook
from steadyscale.loop.mover import Mover
from steadyscale.loop.offerings import OfferingBook, Pool
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import FakeClock
from tests.cluster import cluster_config
from tests.loop.fakes import ledger_with, node


def _mover(clock: FakeClock, book: NodeBook) -> Mover:
    reporter = Reporter(clock)
    config = cluster_config(provider={"type": "memory"})
    offerings = OfferingBook(config, clock, reporter)
    return Mover(book, offerings, reporter, Metrics(clock), clock)


def test_a_bare_sighting_stays_in_memory_and_a_real_change_is_written() -> None:
    clock = FakeClock(50.0)
    book = NodeBook(
        ledger_with(node(1, Status.READY, running_at=0.0), node(2, Status.READY, running_at=0.0)),
        clock,
    )
    mover = _mover(clock, book)
    mover.apply(
        [
            Move("n-1", None, "", NodeUpdate(last_seen_at=50.0)),
            Move("n-2", None, "", NodeUpdate(last_seen_at=50.0, idle_since=50.0)),
        ],
        TickReport(started_at=50.0),
    )
    assert book.records["n-1"].last_seen_at == 50.0
    written = {r.node_id: r for r in book.ledger.nodes()}
    assert written["n-1"].last_seen_at is None  # written with its next real change
    assert (written["n-2"].last_seen_at, written["n-2"].idle_since) == (50.0, 50.0)
    mover.apply([Move("n-2", None, "", NodeUpdate(idle_since=CLEAR))], TickReport(0.0))
    assert book.ledger.nodes()[1].idle_since is None


def test_moves_are_summed_up_and_an_interruption_counts_and_sets_its_spot_pool_aside() -> None:
    clock = FakeClock(50.0)
    book = NodeBook(
        ledger_with(node(1, Status.LAUNCHED), node(2, Status.READY, running_at=0)), clock
    )
    mover = _mover(clock, book)
    mover.offerings.remember("r-2", Pool(None, "spot"))
    report = TickReport(started_at=50.0)
    mover.apply(
        [
            Move("n-1", Status.RUNNING, "EC2 shows it running", NodeUpdate(running_at=50.0)),
            Move("n-2", Status.INTERRUPTED, "EC2 shows it shutting-down"),
        ],
        report,
    )
    assert mover.interruptions == 1
    assert [(e.kind, e.count) for e in report.events] == [
        ("interrupted", 1),
        ("unavailable", 0),
        ("running", 1),
    ]
    assert {r.node_id: r.status for r in book.ledger.nodes()} == {
        "n-1": Status.RUNNING,
        "n-2": Status.INTERRUPTED,
    }
