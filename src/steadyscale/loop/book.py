"""The node book: every node record the loop keeps in memory, the instance ids the ledger
ever recorded, and the writes that keep the ledger in step with the records."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from steadyscale.core.lifecycle import (
    NO_UPDATE,
    TERMINAL,
    HistoryEntry,
    NodeRecord,
    NodeUpdate,
    Status,
)
from steadyscale.retries.clock import Clock
from steadyscale.store.ledger import Ledger

# Finished nodes leave memory this long after they finished (the ledger keeps them, and
# their ids stay in known_ids): a daemon that runs for months walks only recent records.
KEEP_FINISHED_SECONDS = 3600.0

# History entries a batch of moves appended, by node id: written with the records.
Entries = list[tuple[str, HistoryEntry]]


class NodeBook:
    """The records by node id, loaded from the ledger, and every instance id it knows."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock
        self.records: dict[str, NodeRecord] = {r.node_id: r for r in ledger.nodes()}
        # Every instance id the ledger ever recorded, terminal nodes included: an id in
        # here is never given to a second node.
        self.known_ids: set[str] = ledger.known_instance_ids()

    def active(self) -> list[NodeRecord]:
        return [r for r in self.records.values() if r.status not in TERMINAL]

    def counts(self) -> dict[str, int]:
        tally = Counter(record.status for record in self.records.values())
        return {status.value: n for status, n in tally.items()}

    def waiting_by_request(self) -> dict[str, list[NodeRecord]]:
        """Nodes waiting on an answer from RunInstances, by launch request."""
        waiting: dict[str, list[NodeRecord]] = {}
        for record in self.records.values():
            if record.status is Status.REQUESTED and record.request_id:
                waiting.setdefault(record.request_id, []).append(record)
        return waiting

    def relabel(self, renames: Mapping[str, str]) -> None:
        """Renamed node types: their live records take the new name, as the ledger did."""
        if not renames:
            return
        for record in self.records.values():
            if record.status not in TERMINAL and record.node_type in renames:
                record.node_type = renames[record.node_type]

    def add(self, record: NodeRecord) -> None:
        self.records[record.node_id] = record

    def move(
        self,
        record: NodeRecord,
        status: Status,
        reason: str,
        entries: Entries,
        update: NodeUpdate = NO_UPDATE,
    ) -> None:
        """Move ``record`` now; its history entry joins ``entries`` for the next save."""
        entries.append((record.node_id, record.move(status, self.clock.now(), reason, update)))

    def save(self, records: Sequence[NodeRecord], entries: Entries | None = None) -> None:
        with self.ledger.transaction():
            self.ledger.save_nodes(records, entries or ())

    def saw(self, node_ids: Iterable[str], now: float) -> None:
        """Nodes shown as they were: only the time they were last seen changes, in memory
        (like every memory-only update), and nothing is allocated for them."""
        records = self.records
        for node_id in node_ids:
            records[node_id].last_seen_at = now

    def forget_finished(self, now: float) -> None:
        """Drop from memory the nodes finished more than KEEP_FINISHED_SECONDS ago (once
        per full listing, so the walk is rare)."""
        cutoff = now - KEEP_FINISHED_SECONDS
        done = [
            node_id
            for node_id, r in self.records.items()
            if r.status in TERMINAL and r.history and r.history[-1].at < cutoff
        ]
        for node_id in done:
            del self.records[node_id]
