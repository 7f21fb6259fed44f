"""The API's tables on both backends: demand in named entries (their sum is the demand the
loop reads), what an earlier ledger demanded becoming the entry ``default``, the answers
kept for idempotency keys, the audit log, the node moves read for the event stream."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store import api_records, demand_entries
from steadyscale.store.ledger import MIGRATIONS, SCHEMA, Ledger, as_location
from steadyscale.store.postgres import PostgresStore
from steadyscale.store.sqlite import Store
from steadyscale.store.storage import Storage
from tests.ledgers import LedgerAt

CPU = DemandItem(bundle={"CPU": 1}, count=2)
GPU = DemandItem(bundle={"CPU": 1, "GPU": 1}, count=1)


def test_the_demand_is_the_sum_of_the_entries(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    with ledger.transaction():
        demand_entries.set_entry(ledger.store, "b", [GPU], 5.0)
        demand_entries.set_entry(ledger.store, "a", [CPU], 6.0)
    assert ledger.demand() == [CPU, GPU]  # by entry name
    assert ledger.demand_updated_at() == 6.0
    ledger.set_demand([GPU], 7.0)  # request: the whole demand, in entry default
    assert demand_entries.read_entries(ledger.store) == {"default": [GPU]}
    with ledger.transaction():
        demand_entries.set_entry(ledger.store, "a", [CPU], 8.0)
        assert demand_entries.delete_entry(ledger.store, "default", 8.0)
        assert not demand_entries.delete_entry(ledger.store, "nope", 8.0)
    assert ledger.demand() == [CPU]
    ledger.clear()
    assert demand_entries.read_entries(ledger.store) == {}
    ledger.close()


def test_an_earlier_ledgers_demand_becomes_the_entry_default(ledger_at: LedgerAt) -> None:
    before = dataclasses.replace(SCHEMA, migrations={n: MIGRATIONS[n] for n in (1, 2, 3, 4)})
    where = as_location(ledger_at("old.db"))
    store: Storage = (
        Store(where, before) if isinstance(where, Path) else PostgresStore(where, before)
    )
    store.execute(
        "INSERT INTO demand (position, bundle, count, updated_at) VALUES "
        "(0, '{\"CPU\": 1}', 2, 3.0)"
    )
    store.close()
    ledger = Ledger(where)
    assert demand_entries.read_entries(ledger.store) == {"default": [CPU]}
    assert ledger.demand() == [CPU]
    ledger.close()


def test_idempotency_keys_and_the_audit_log(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    db = ledger.store
    with ledger.transaction():
        api_records.keep_answer(
            db, who="ci", key="k", request_hash="h", status=200, answer={"a": 1}, at=10.0
        )
        api_records.audit(
            db, who="ci", action="demand.replace", target="demand", detail={"x": 1}, at=10.0
        )
    kept = api_records.kept_answer(db, "ci", "k")
    assert kept == api_records.KeptAnswer("h", 200, {"a": 1})
    assert api_records.kept_answer(db, "other", "k") is None  # keys are per token
    with ledger.transaction():  # a day later the key is forgotten
        api_records.keep_answer(
            db, who="ci", key="k2", request_hash="h", status=200, answer={}, at=10.0 + 86401
        )
    assert api_records.kept_answer(db, "ci", "k") is None
    [entry] = api_records.audit_log(db)
    assert (entry.who, entry.action, entry.detail) == ("ci", "demand.replace", {"x": 1})
    ledger.close()


def test_node_moves_are_read_in_order_after_an_id(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    record = NodeRecord(
        node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0, instance_id="i-1"
    )
    with ledger.transaction():
        ledger.save_nodes(
            [record],
            [
                ("n-1", HistoryEntry(Status.QUEUED, 1.0, "demand")),
                ("n-1", HistoryEntry(Status.READY, 2.0, "healthy")),
            ],
        )
    first = api_records.moves_after(ledger.store, 0)
    assert [(m.status, m.node_type, m.instance_id) for m in first] == [
        ("queued", "cpu", "i-1"),
        ("ready", "cpu", "i-1"),
    ]
    assert api_records.last_move_id(ledger.store) == first[-1].id
    assert api_records.moves_after(ledger.store, first[0].id) == first[1:]
    ledger.close()


def test_the_last_move_of_each_live_node(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    live = NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)
    gone = NodeRecord(node_id="n-2", node_type="cpu", status=Status.TERMINATED, created_at=1.0)
    with ledger.transaction():
        ledger.save_nodes(
            [live, gone],
            [
                ("n-1", HistoryEntry(Status.QUEUED, 1.0, "demand")),
                ("n-2", HistoryEntry(Status.TERMINATED, 1.5, "idle")),
                ("n-1", HistoryEntry(Status.READY, 2.0, "healthy")),
            ],
        )
    live_only = api_records.NodeSelection()
    assert api_records.last_moves(ledger.store, live_only) == {"n-1": [("ready", 2.0, "healthy")]}
    every = api_records.NodeSelection(finished=True)
    assert set(api_records.last_moves(ledger.store, every)) == {"n-1", "n-2"}
    # Of the finished ones, only those active since: n-2 was created at 1.0.
    lately = api_records.NodeSelection(finished=True, finished_after=1.5)
    assert set(api_records.last_moves(ledger.store, lately)) == {"n-1"}
    assert set(api_records.histories(ledger.store, lately)) == {"n-1"}
    assert [r["node_id"] for r in api_records.node_rows(ledger.store, lately)] == ["n-1"]
    ledger.close()
