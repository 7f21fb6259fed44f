"""The demand endpoints: read, replace, one named entry; idempotency keys; the audit log;
malformed, oversize and infeasible bodies refused with nothing changed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from steadyscale.store import api_records
from steadyscale.store.ledger import Ledger
from tests.api.conftest import AUTH, MakeApi
from tests.ledgers import LedgerAt

ONE = {"demand": [{"bundle": {"CPU": 1}, "count": 3}]}
TWO = {"demand": [{"bundle": {"CPU": 2}, "count": 1}]}


def test_replace_sets_the_demand_the_loop_reads_as_entry_default(make_api: MakeApi) -> None:
    client, ctx = make_api()
    answer = client.put("/api/v1/demand", json=ONE, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["entries"] == {"default": [{"bundle": {"CPU": 1.0}, "count": 3}]}
    assert [(i.bundle, i.count) for i in ctx.ledger.demand()] == [({"CPU": 1.0}, 3)]
    assert client.get("/api/v1/demand", headers=AUTH).json()["pending_demand"] == 3


def test_two_workloads_own_their_entries_and_the_demand_is_their_sum(make_api: MakeApi) -> None:
    client, ctx = make_api()
    client.put("/api/v1/demand/entries/queue-a", json=ONE, headers=AUTH)
    client.put("/api/v1/demand/entries/queue-b", json=TWO, headers=AUTH)
    client.put("/api/v1/demand/entries/queue-a", json=TWO, headers=AUTH)  # a changes its own
    body = client.get("/api/v1/demand", headers=AUTH).json()
    assert set(body["entries"]) == {"queue-a", "queue-b"}
    assert body["pending_demand"] == 2
    assert sum(i.count for i in ctx.ledger.demand()) == 2
    deleted = client.delete("/api/v1/demand/entries/queue-a", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json()["entries"] == {"queue-b": [{"bundle": {"CPU": 2.0}, "count": 1}]}


def test_replacing_the_demand_drops_every_named_entry(make_api: MakeApi) -> None:
    client, ctx = make_api()
    client.put("/api/v1/demand/entries/queue-a", json=ONE, headers=AUTH)
    client.put("/api/v1/demand", json=TWO, headers=AUTH)
    assert list(client.get("/api/v1/demand", headers=AUTH).json()["entries"]) == ["default"]


def test_deleting_an_unknown_entry_is_a_404_naming_the_entries(make_api: MakeApi) -> None:
    client, ctx = make_api()
    client.put("/api/v1/demand/entries/queue-a", json=ONE, headers=AUTH)
    answer = client.delete("/api/v1/demand/entries/nope", headers=AUTH)
    assert answer.status_code == 404
    assert "queue-a" in answer.json()["detail"]
    assert api_records.audit_log(ctx.ledger.store)[-1].action == "demand.entry.set"


def test_a_repeat_with_the_same_idempotency_key_gets_the_first_answer(make_api: MakeApi) -> None:
    client, ctx = make_api()
    keyed = {**AUTH, "Idempotency-Key": "k1"}
    first = client.put("/api/v1/demand/entries/a", json=ONE, headers=keyed)
    client.put("/api/v1/demand/entries/a", json=TWO, headers=AUTH)  # changed since
    again = client.put("/api/v1/demand/entries/a", json=ONE, headers=keyed)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert [(i.bundle, i.count) for i in ctx.ledger.demand()] == [({"CPU": 2.0}, 1)]
    assert len(api_records.audit_log(ctx.ledger.store)) == 2  # the repeat changed nothing


def test_the_same_idempotency_key_for_another_request_is_a_409(make_api: MakeApi) -> None:
    client, ctx = make_api()
    keyed = {**AUTH, "Idempotency-Key": "k1"}
    client.put("/api/v1/demand/entries/a", json=ONE, headers=keyed)
    other = client.put("/api/v1/demand/entries/a", json=TWO, headers=keyed)
    assert other.status_code == 409
    assert "another request" in other.json()["detail"]
    assert [(i.bundle, i.count) for i in ctx.ledger.demand()] == [({"CPU": 1.0}, 3)]


def test_every_change_is_in_the_audit_log_by_token_name_never_the_token(
    make_api: MakeApi,
) -> None:
    client, ctx = make_api()
    client.put("/api/v1/demand", json=ONE, headers=AUTH)
    client.delete("/api/v1/demand/entries/default", headers=AUTH)
    log = api_records.audit_log(ctx.ledger.store)
    assert [(e.who, e.action, e.target) for e in log] == [
        ("writer", "demand.replace", "demand"),
        ("writer", "demand.entry.delete", "demand/default"),
    ]
    assert log[0].detail == {"demand": [{"bundle": {"CPU": 1.0}, "count": 3}]}
    rows = ctx.ledger.store.rows("SELECT * FROM audit_log")
    assert AUTH["Authorization"].split()[1] not in str([dict(r) for r in rows])


def test_malformed_bodies_are_one_line_422s_and_change_nothing(make_api: MakeApi) -> None:
    client, ctx = make_api()
    client.put("/api/v1/demand", json=ONE, headers=AUTH)
    bodies: list[object] = [
        {"demand": [{"bundle": {"CPU": -1}, "count": 3}]},
        {"demand": [{"bundle": {}, "count": 3}]},
        {"demand": [{"bundle": {"CPU": 1}, "count": -1}]},
        {"demand": "lots"},
        {"wanted": []},
        [1, 2],
    ]
    for body in bodies:
        answer = client.put("/api/v1/demand", json=body, headers=AUTH)
        assert answer.status_code == 422, body
        assert isinstance(answer.json()["detail"], str)
        assert "\n" not in answer.json()["detail"]
    not_json = client.put(
        "/api/v1/demand", content=b"{oops", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    assert [(i.bundle, i.count) for i in ctx.ledger.demand()] == [({"CPU": 1.0}, 3)]


def test_a_bundle_no_node_type_fits_is_refused_with_why(make_api: MakeApi) -> None:
    client, ctx = make_api()
    answer = client.put(
        "/api/v1/demand", json={"demand": [{"bundle": {"GPU": 1}, "count": 1}]}, headers=AUTH
    )
    assert answer.status_code == 422
    assert "no node type" in answer.json()["detail"]
    assert ctx.ledger.demand() == []


def test_a_bad_entry_name_is_refused(make_api: MakeApi) -> None:
    client, ctx = make_api()
    answer = client.put("/api/v1/demand/entries/-bad name", json=ONE, headers=AUTH)
    assert answer.status_code == 422
    assert ctx.ledger.demand() == []


def test_an_oversize_body_is_a_413_and_changes_nothing(make_api: MakeApi) -> None:
    client, ctx = make_api(max_body_bytes=200)
    big = {"demand": [{"bundle": {f"R{i}": 1}, "count": 1} for i in range(50)]}
    answer = client.put("/api/v1/demand", json=big, headers=AUTH)
    assert answer.status_code == 413
    assert "api.max_body_bytes" in answer.json()["detail"]
    assert ctx.ledger.demand() == []


def test_a_chunked_oversize_body_is_a_413(make_api: MakeApi) -> None:
    client, ctx = make_api(max_body_bytes=200)

    def chunks() -> Iterator[bytes]:
        yield b'{"demand": ['
        for _ in range(40):
            yield b'{"bundle": {"CPU": 1}, "count": 1},'
        yield b"]}"

    answer = client.put(
        "/api/v1/demand",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert ctx.ledger.demand() == []


def test_the_status_shows_the_demand_by_entry(make_api: MakeApi) -> None:
    client, _ = make_api()
    client.put("/api/v1/demand/entries/farm", json=TWO, headers=AUTH)
    status = client.get("/api/v1/status", headers=AUTH).json()
    assert status["demand_entries"] == {"farm": [{"bundle": {"CPU": 2.0}, "count": 1}]}
    assert status["pending_demand"] == 1


def test_changes_keys_and_refusals_on_either_backend(
    make_api: MakeApi, ledger_at: LedgerAt
) -> None:
    client, ctx = make_api(ledger=Ledger(ledger_at("api.db")))
    keyed = {**AUTH, "Idempotency-Key": "k1"}
    first = client.put("/api/v1/demand/entries/a", json=ONE, headers=keyed)
    assert client.put("/api/v1/demand/entries/a", json=ONE, headers=keyed).json() == first.json()
    assert client.put("/api/v1/demand/entries/a", json=TWO, headers=keyed).status_code == 409
    assert client.delete("/api/v1/demand/entries/nope", headers=AUTH).status_code == 404
    assert [(i.bundle, i.count) for i in ctx.ledger.demand()] == [({"CPU": 1.0}, 3)]
    assert len(api_records.audit_log(ctx.ledger.store)) == 1


def test_tokens_never_reach_the_logs(make_api: MakeApi, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_api()
    caplog.set_level(logging.DEBUG)
    client.put("/api/v1/demand", json=ONE, headers=AUTH)
    client.get("/api/v1/demand", headers={"Authorization": "Bearer wrong-token-0123456789"})
    client.put("/api/v1/demand", json={"demand": "x"}, headers=AUTH)
    assert AUTH["Authorization"].split()[1] not in caplog.text
    assert "wrong-token-0123456789" not in caplog.text
