"""The node book: records in memory, every instance id ever known, writes in step."""

from __future__ import annotations

from steadyscale.core.lifecycle import Status
from steadyscale.loop.book import KEEP_FINISHED_SECONDS, Entries, NodeBook
from steadyscale.retries.clock import FakeClock
from tests.loop.fakes import ledger_with, node


def test_a_finished_node_leaves_memory_late_and_its_id_stays_known() -> None:
    clock = FakeClock(100.0)
    book = NodeBook(ledger_with(node(1, Status.TERMINATING, terminate_requested_at=0)), clock)
    entries: Entries = []
    book.move(book.records["n-1"], Status.TERMINATED, "EC2 shows it terminated", entries)
    book.save([book.records["n-1"]], entries)
    book.forget_finished(100.0 + KEEP_FINISHED_SECONDS)
    assert "n-1" in book.records
    book.forget_finished(100.0 + KEEP_FINISHED_SECONDS + 1)
    assert "n-1" not in book.records and "i-1" in book.known_ids
    # A new book (a restart) loads only the nodes not finished, and knows every id.
    again = NodeBook(book.ledger, clock)
    assert again.records == {} and again.known_ids == {"i-1"}


def test_a_sighting_sets_only_the_time_last_seen() -> None:
    clock = FakeClock(0.0)
    book = NodeBook(ledger_with(node(1, Status.READY, running_at=0.0)), clock)
    before = book.records["n-1"]
    book.saw(["n-1"], 42.0)
    assert book.records["n-1"] is before and before.last_seen_at == 42.0
    assert book.ledger.nodes()[0].last_seen_at is None
    assert book.counts() == {"ready": 1}
