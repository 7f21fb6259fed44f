"""The ledger, on SQLite and on PostgreSQL: durable nodes, requests, demand and
transitions; clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from steadyscale.core.lifecycle import NodeRecord, NodeUpdate, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store.ledger import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    LaunchRequest,
    Ledger,
    LedgerError,
    WriterLock,
    as_location,
)
from steadyscale.store.postgres import PostgresStore
from steadyscale.store.sqlite import Store
from steadyscale.store.storage import Storage
from tests.ledgers import LedgerAt, run_sql


def _node(node_id: str = "n-1", status: Status = Status.QUEUED) -> NodeRecord:
    return NodeRecord(node_id=node_id, node_type="cpu", status=status, created_at=1.0)


def test_nodes_and_history_survive_a_reopen(ledger_at: LedgerAt) -> None:
    path = ledger_at("l.db")
    ledger = Ledger(path)
    record = _node()
    entries = [
        (record.node_id, record.move(Status.REQUESTED, 2.0, "sent", NodeUpdate(request_id="r-1")))
    ]
    with ledger.transaction():
        ledger.save_nodes([record], entries)
        ledger.save_request(
            LaunchRequest(
                request_id="r-1",
                node_type="cpu",
                count=1,
                client_token="ss-r-1",
                status="open",
                created_at=2.0,
            )
        )
    ledger.close()

    again = Ledger(path)
    [loaded] = again.nodes(with_history=True)
    assert loaded.status is Status.REQUESTED and loaded.request_id == "r-1"
    assert [(e.status, e.reason) for e in loaded.history] == [(Status.REQUESTED, "sent")]
    assert [r.client_token for r in again.requests(open_only=True)] == ["ss-r-1"]
    assert again.meta("schema_version") == str(SCHEMA_VERSION)
    again.close()


def test_terminal_nodes_are_kept_but_not_loaded_by_default(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    done = _node("n-2", Status.TERMINATED)
    done.instance_id = "i-2"
    with ledger.transaction():
        ledger.save_nodes([_node(), done])
    assert [r.node_id for r in ledger.nodes()] == ["n-1"]
    assert len(ledger.nodes(include_terminal=True)) == 2
    assert ledger.known_instance_ids() == {"i-2"}


def test_demand_is_replaced_whole(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=3)], 5.0)
    ledger.set_demand(
        [DemandItem(bundle={"GPU": 1}, count=1), DemandItem(bundle={"CPU": 1}, count=0)], 6.0
    )
    assert ledger.demand() == [DemandItem(bundle={"GPU": 1}, count=1)]
    assert ledger.demand_updated_at() == 6.0


def test_a_second_connection_reads_while_one_writes(ledger_at: LedgerAt) -> None:
    # (SQLite: WAL mode; PostgreSQL: MVCC)
    writer = Ledger(ledger_at("l.db"))
    reader = Ledger(ledger_at("l.db"))
    with writer.transaction():
        writer.save_nodes([_node()])
        assert reader.nodes() == []  # not committed yet, and the reader is not blocked
    assert len(reader.nodes()) == 1


def test_a_corrupt_ledger_is_a_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerError, match="is unreadable"):
        Ledger(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_ledger_from_a_newer_version_is_refused(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    ledger.set_meta("schema_version", "99")
    ledger.close()
    with pytest.raises(LedgerError, match="upgrade steadyscale"):
        Ledger(ledger_at("l.db"))
    with pytest.raises(LedgerError, match="upgrade steadyscale"):
        Ledger(ledger_at("l.db"), readonly=True)


def test_a_version_1_ledger_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    import sqlite3  # noqa: PLC0415

    from steadyscale.store import ledger_schema as ledger_module  # noqa: PLC0415

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(ledger_module._SCHEMA)  # version 1: requests without a spec column
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO requests (request_id, node_type, count, client_token, status, "
        "created_at) VALUES ('r-1', 'cpu', 2, 'ss-r-1', 'open', 1.0)"
    )
    db.commit()
    db.close()
    ledger = Ledger(path)
    assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
    [request] = ledger.requests()
    assert (request.client_token, request.spec) == ("ss-r-1", None)
    request.spec = '{"InstanceType": "m5.large"}'
    with ledger.transaction():
        ledger.save_request(request)
    assert ledger.requests()[0].spec == '{"InstanceType": "m5.large"}'


def test_a_version_1_ledger_is_migrated_on_either_backend(ledger_at: LedgerAt) -> None:
    version_1 = dataclasses.replace(SCHEMA, migrations={1: MIGRATIONS[1]})
    where = as_location(ledger_at("old.db"))
    store: Storage = (
        Store(where, version_1) if isinstance(where, Path) else PostgresStore(where, version_1)
    )
    store.execute(
        "INSERT INTO requests (request_id, node_type, count, client_token, status, "
        "created_at) VALUES ('r-1', 'cpu', 2, 'ss-r-1', 'open', 1.5)"
    )
    store.close()
    ledger = Ledger(where)
    assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
    [request] = ledger.requests()
    assert (request.client_token, request.spec, request.created_at) == ("ss-r-1", None, 1.5)
    ledger.close()


def test_a_file_without_a_schema_version_is_refused(
    ledger_at: LedgerAt, request: pytest.FixtureRequest
) -> None:
    path = ledger_at("foreign.db")
    run_sql(request, path, "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    with pytest.raises(LedgerError, match="has no schema version"):
        Ledger(path)


def test_only_one_writer_at_a_time(ledger_at: LedgerAt) -> None:
    first = Ledger(ledger_at("l.db"))
    first.acquire_writer()
    second = Ledger(ledger_at("l.db"))
    with pytest.raises(
        LedgerError, match=r"another steadyscale daemon \(pid \d+( on [^)]+)?\) is running"
    ):
        second.acquire_writer()
    assert second.demand() == []  # readers (status, request) are not blocked
    first.close()
    second.acquire_writer()  # free once the first is gone
    second.close()
    if isinstance(ledger_at("l.db"), Path):
        lock = WriterLock(ledger_at("l.db"))
        lock.acquire()
        lock.release()


def test_a_start_re_labels_live_nodes_and_keeps_the_node_types_in_one_transaction(
    ledger_at: LedgerAt,
) -> None:
    path = ledger_at("l.db")
    ledger = Ledger(path)
    live, done = _node("n-1"), _node("n-2", Status.CANCELLED)
    with ledger.transaction():
        ledger.save_nodes([live, done])
    assert ledger.node_types() is None  # a ledger from before snapshots were kept
    ledger.start_with_node_types('{"cpu2": {}}', {"cpu": "cpu2"})
    ledger.close()

    again = Ledger(path, readonly=True)
    assert again.node_types() == '{"cpu2": {}}'
    types = {r.node_id: r.node_type for r in again.nodes(include_terminal=True)}
    assert types == {"n-1": "cpu2", "n-2": "cpu"}  # a finished node keeps its history's name
    again.close()


def test_the_launch_parameters_of_live_nodes_are_read_by_request(ledger_at: LedgerAt) -> None:
    ledger = Ledger(ledger_at("l.db"))
    live = _node("n-1", Status.REQUESTED)
    live.request_id = "r-1"
    done = _node("n-2", Status.CANCELLED)
    done.request_id = "r-2"
    with ledger.transaction():
        ledger.save_nodes([live, done])
        for request_id in ("r-1", "r-2"):
            ledger.save_request(
                LaunchRequest(
                    request_id=request_id,
                    node_type="cpu",
                    count=1,
                    client_token=f"ss-{request_id}",
                    status="done",
                    created_at=1.0,
                    spec='{"ImageId": "ami-1"}',
                )
            )
    assert ledger.live_launch_specs() == {"r-1": '{"ImageId": "ami-1"}'}


def test_a_nodes_hourly_price_survives_a_reopen(ledger_at: LedgerAt) -> None:
    path = ledger_at("price.db")
    ledger = Ledger(path)
    record = _node()
    update = NodeUpdate(request_id="r-1", hourly_price=0.0412)
    entries = [(record.node_id, record.move(Status.REQUESTED, 2.0, "sent", update))]
    with ledger.transaction():
        ledger.save_nodes([record], entries)
    ledger.close()
    again = Ledger(path)
    [loaded] = again.nodes()
    assert loaded.hourly_price == pytest.approx(0.0412)
    again.close()
