"""The ledger's id, and a ledger as one JSON document: export, import into a new ledger,
and the same document again; anything else refused with one line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store import demand_entries
from steadyscale.store.api_records import audit, audit_log, keep_answer, kept_answer
from steadyscale.store.ledger import LaunchRequest, Ledger, LedgerError
from steadyscale.store.marks import MarkKind, Marks, NodeMark
from steadyscale.store.portable import export_ledger, import_ledger
from steadyscale.store.portable_tables import SIDE_TABLES
from steadyscale.store.workload import UsageReport
from tests.ledgers import LedgerAt


def test_a_ledger_gets_an_id_on_its_first_writable_open_and_keeps_it(ledger_at: LedgerAt) -> None:
    path = ledger_at("l.db")
    first = Ledger(path)
    ledger_id = first.ledger_id
    assert ledger_id is not None and uuid.UUID(ledger_id).version == 4
    first.close()
    again = Ledger(path)
    reader = Ledger(path, readonly=True)
    assert again.ledger_id == reader.ledger_id == ledger_id
    assert again.untagged_requests() == frozenset()
    again.close()
    reader.close()


def test_a_readonly_open_of_a_ledger_without_an_id_says_none(ledger_at: LedgerAt) -> None:
    path = ledger_at("old.db")
    old = Ledger(path)
    old._db.execute("DELETE FROM meta WHERE key = 'ledger_id'")  # as an older version left it
    old.close()
    reader = Ledger(path, readonly=True)
    assert reader.ledger_id is None
    reader.close()


def _busy_ledger(path: str | Path) -> Ledger:
    ledger = Ledger(path)
    ledger.set_demand([DemandItem(bundle={"CPU": 2, "GPU": 1}, count=3)], 500.0)
    spec = json.dumps({"InstanceType": "m5.large", "ImageId": "ami-1"})
    for n, status in enumerate(("done", "open")):
        ledger.save_request(
            LaunchRequest(
                f"r-{n}", "cpu", 2, f"ss-r-{n}", status, 100.0, subnet_id="subnet-1", spec=spec
            )
        )
    nodes = []
    entries = []
    for n, status in enumerate((Status.READY, Status.TERMINATED, Status.REQUESTED)):
        record = NodeRecord(
            f"n-{n}",
            "cpu",
            status,
            100.0 + n,
            request_id="r-0" if status is not Status.REQUESTED else "r-1",
            instance_id=None if status is Status.REQUESTED else f"i-{n}",
            running_at=110.0,
        )
        record.history += [
            HistoryEntry(Status.QUEUED, 100.0, "demand needs it"),
            HistoryEntry(status, 120.0 + n, "because"),
        ]
        nodes.append(record)
        entries += [(record.node_id, e) for e in record.history]
    with ledger.transaction():
        ledger.save_nodes(nodes, entries)
    ledger.set_meta("node_types", '{"cpu": {}}')
    ledger.set_meta("cluster_name", "c1")
    _side_tables(ledger)
    return ledger


def _side_tables(ledger: Ledger) -> None:
    """What the workloads, EC2's events and the API left in the ledger of a running
    cluster: named demand entries, usage, a drain, a mark, a kept answer, the audit log."""
    with ledger.transaction():
        demand_entries.set_entry(
            ledger.store, "batch", [DemandItem(bundle={"CPU": 1}, count=4)], 510.0
        )
        keep_answer(
            ledger.store, who="ops", key="k-1", request_hash="h", status=200, answer={}, at=510.0
        )
        for n in (1, 2):
            audit(ledger.store, who="ops", action=f"a{n}", target="t", detail={}, at=500.0 + n)
    ledger.report_usage([UsageReport(node="n-0", busy=True, ttl_seconds=60, reporter="w")], 520.0)
    ledger.ask_drain("i-0", "ops", 530.0)
    Marks(ledger.store).add([NodeMark("n-0", MarkKind.REBALANCE, 540.0, None, "e-1")])


def test_export_import_export_gives_the_same_document(ledger_at: LedgerAt) -> None:
    source = _busy_ledger(ledger_at("a.db"))
    exported = export_ledger(source, "c1")
    source.close()
    assert exported["version"] == 2 and len(exported["nodes"]) == 3
    assert exported["requests"][0]["client_token"] == "ss-r-0"
    text = json.dumps(exported, sort_keys=True)
    target = Ledger(ledger_at("b.db"))
    assert target.ledger_id != exported["ledger_id"]
    assert import_ledger(target, json.loads(text), source="x.json", cluster_name="c1") == 3
    assert target.ledger_id == exported["ledger_id"]
    assert json.dumps(export_ledger(target, "c1"), sort_keys=True) == text
    assert [len(r.history) for r in target.nodes(include_terminal=True, with_history=True)] == [
        2,
        2,
        2,
    ]
    target.close()


def _document(ledger_at: LedgerAt) -> dict[str, Any]:
    source = _busy_ledger(ledger_at("a.db"))
    try:
        return export_ledger(source, "c1")
    finally:
        source.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other"), "x.json: not a steadyscale ledger export"),
        (lambda d: d.update(version=3), "x.json: ledger export version 3; this steadyscale"),
        (lambda d: d.update(cluster_name="c2"), "x.json: an export of cluster 'c2'"),
        (lambda d: d["nodes"][0].update(status="flying"), "x.json: a damaged ledger export"),
        (lambda d: d["nodes"][0].update(colour="red"), "x.json: a damaged ledger export"),
        (lambda d: d.pop("requests"), "x.json: a damaged ledger export"),
        (lambda d: d["demand"][0].update(bundle={"CPU": "x"}), "x.json: a damaged"),
        (lambda d: d["meta"].update(x=3), "x.json: a damaged ledger export"),
        (lambda d: d.pop("tables"), "x.json: a damaged ledger export"),
        (lambda d: d["tables"].update(colours=[]), "x.json: a damaged ledger export (unknown"),
        (lambda d: d["tables"]["usage"][0].update(busy="yes"), "x.json: a damaged ledger"),
        (lambda d: d["tables"]["usage"][0].pop("reporter"), "x.json: a damaged ledger"),
        (lambda d: d["tables"]["node_marks"][0].update(node_id="n-9"), "x.json: a damaged"),
        (lambda d: d["tables"]["demand_entries"][0].update(count=7), "x.json: a damaged"),
    ],
)
def test_an_import_of_anything_else_is_one_line_and_leaves_the_ledger_empty(
    ledger_at: LedgerAt, change: Any, message: str
) -> None:
    document = _document(ledger_at)
    change(document)
    target = Ledger(ledger_at("b.db"))
    with pytest.raises(LedgerError, match="^" + message.replace("(", r"\(")) as raised:
        import_ledger(target, document, source="x.json", cluster_name="c1")
    assert "\n" not in str(raised.value)
    assert target.is_empty() and target.demand() == []
    target.close()


def test_an_import_into_a_ledger_with_records_is_refused(ledger_at: LedgerAt) -> None:
    document = _document(ledger_at)
    busy = _busy_ledger(ledger_at("c.db"))
    with pytest.raises(LedgerError, match="is not empty: import only into a new ledger"):
        import_ledger(busy, document, source="x.json", cluster_name="c1")
    assert len(busy.nodes(include_terminal=True)) == 3
    busy.close()


def test_a_ledger_moves_between_a_file_and_a_database_as_one_document(
    tmp_path: Path, postgres: str
) -> None:
    """A PostgreSQL ledger does not move as a file does: export and import move it."""
    source = _busy_ledger(tmp_path / "a.db")
    exported = json.dumps(export_ledger(source, "c1"), sort_keys=True)
    source.close()
    database = Ledger(postgres)
    assert import_ledger(database, json.loads(exported), source="x.json", cluster_name="c1") == 3
    assert json.dumps(export_ledger(database, "c1"), sort_keys=True) == exported
    back = Ledger(tmp_path / "back.db")
    import_ledger(back, export_ledger(database, "c1"), source="db", cluster_name="c1")
    assert json.dumps(export_ledger(back, "c1"), sort_keys=True) == exported
    database.close()
    back.close()


def test_a_move_keeps_what_workloads_events_and_the_api_left_in_the_ledger(
    ledger_at: LedgerAt,
) -> None:
    """Each workload keeps its own demand entry (not one ``default`` with the sum, which
    its next PUT would add to), a busy node stays busy, a drain asked stays asked, a mark
    acts once, a retried API call gets its kept answer, the audit log keeps its order."""
    target = Ledger(ledger_at("b.db"))
    import_ledger(target, _document(ledger_at), source="x.json", cluster_name="c1")
    entries = demand_entries.read_entries(target.store)
    assert {name: [(i.bundle, i.count) for i in items] for name, items in entries.items()} == {
        "default": [({"CPU": 2, "GPU": 1}, 3)],
        "batch": [({"CPU": 1}, 4)],
    }
    assert [(i.bundle, i.count) for i in target.demand()] == [
        ({"CPU": 2, "GPU": 1}, 3),
        ({"CPU": 1}, 4),
    ]
    assert target.usage(550.0)["n-0"].busy
    assert target.drain_asks() == {"n-0": 530.0}
    assert [(m.node_id, m.kind) for m in Marks(target.store).all()] == [("n-0", MarkKind.REBALANCE)]
    kept = kept_answer(target.store, "ops", "k-1")
    assert kept is not None and kept.status == 200
    assert [e.action for e in audit_log(target.store)] == ["a1", "a2"]
    target.close()


def test_a_version_1_export_imports_with_its_demand_as_the_entry_default(
    ledger_at: LedgerAt,
) -> None:
    document = _document(ledger_at)
    document["version"] = 1
    del document["tables"]
    target = Ledger(ledger_at("b.db"))
    assert import_ledger(target, document, source="x.json", cluster_name="c1") == 3
    entries = demand_entries.read_entries(target.store)
    assert list(entries) == ["default"]
    assert [(i.bundle, i.count) for i in entries["default"]] == [
        (i.bundle, i.count) for i in target.demand()
    ]
    assert len(target.demand()) == 2
    target.close()


def test_every_table_of_the_ledger_moves_with_an_export(tmp_path: Path) -> None:
    """A table added to the ledger must be added to the export too (or here, with why)."""
    ledger = Ledger(tmp_path / "l.db")
    names = {
        r["name"]
        for r in ledger.store.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    ledger.close()
    # meta, demand, requests, nodes and transitions are the document's own parts.
    whole = {"meta", "demand", "requests", "nodes", "transitions"}
    assert names == whole | {t.name for t in SIDE_TABLES}
