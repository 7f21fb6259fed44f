"""Usage reports, drain requests and acks through the API, kept in the ledger; unknown
nodes are a 404 with nothing changed; and the node list shows it all."""

from __future__ import annotations

from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.store import api_records
from steadyscale.store.ledger import Ledger
from tests.api.conftest import AUTH, MakeApi


def add_node(
    ledger: Ledger, node_id: str, status: Status, instance_id: str, at: float = 900.0
) -> None:
    record = NodeRecord(
        node_id=node_id,
        node_type="cpu",
        status=status,
        created_at=at,
        instance_id=instance_id,
        instance_type="m5.large",
        availability_zone="us-east-1a",
        private_ip="10.0.0.9",
        hourly_price=0.096 if status is Status.READY else None,
    )
    with ledger.transaction():
        ledger.save_nodes(
            [record],
            [
                (node_id, HistoryEntry(Status.QUEUED, at, "demand 1 x {CPU: 2}")),
                (node_id, HistoryEntry(status, at + 50.0, f"now {status.value}")),
            ],
        )


def test_nodes_list_status_addresses_readiness_reason_and_history(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    add_node(ctx.ledger, "n-2", Status.TERMINATED, "i-2")
    nodes = client.get("/api/v1/nodes", headers=AUTH).json()["nodes"]
    assert [n["node_id"] for n in nodes] == ["n-1"]
    node = nodes[0]
    assert node["ready"] is True
    assert node["instance_id"] == "i-1" and node["private_ip"] == "10.0.0.9"
    assert node["reason"] == "now ready"
    assert [h["status"] for h in node["history"]] == ["queued", "ready"]
    # The price its pool had at launch, as the ledger recorded it.
    assert node["hourly_price"] == 0.096 and node["usage"] is None
    every = client.get("/api/v1/nodes?finished=true", headers=AUTH).json()["nodes"]
    assert {n["node_id"] for n in every} == {"n-1", "n-2"}


def test_finished_nodes_can_be_limited_to_those_active_lately(make_api: MakeApi) -> None:
    """A ledger keeps every node it ever had: the page asks only for the last hour's."""
    client, ctx = make_api()  # the clock says 1000
    add_node(ctx.ledger, "n-old", Status.TERMINATED, "i-1", at=-5000.0)
    add_node(ctx.ledger, "n-recent", Status.LAUNCH_FAILED, "i-2", at=500.0)
    add_node(ctx.ledger, "n-live", Status.READY, "i-3", at=-9000.0)  # up for long: listed
    for history in ("true", "false"):
        query = f"/api/v1/nodes?finished=true&finished_within=3600&history={history}"
        nodes = client.get(query, headers=AUTH).json()["nodes"]
        assert [n["node_id"] for n in nodes] == ["n-live", "n-recent"]
        assert all(n["history"] for n in nodes)
    every = client.get("/api/v1/nodes?finished=true", headers=AUTH).json()["nodes"]
    assert [n["node_id"] for n in every] == ["n-live", "n-old", "n-recent"]
    refused = client.get("/api/v1/nodes?finished=true&finished_within=0", headers=AUTH)
    assert refused.status_code == 422


def test_usage_reports_are_kept_and_shown_with_the_node(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    add_node(ctx.ledger, "n-2", Status.READY, "i-2")
    body = {
        "reports": [
            {"node": "n-1", "busy": True, "bundles": [{"CPU": 1}], "ttl_seconds": 30},
            {"node": "i-2", "busy": False},
        ]
    }
    answer = client.post("/api/v1/usage", json=body, headers=AUTH)
    assert answer.status_code == 200 and answer.json() == {"accepted": 2}
    usage = ctx.ledger.usage(ctx.clock.now())
    assert usage["n-1"].busy and usage["n-1"].reporter == "writer"
    assert usage["n-2"].busy is False
    nodes = {n["node_id"]: n for n in client.get("/api/v1/nodes", headers=AUTH).json()["nodes"]}
    assert nodes["n-1"]["usage"]["busy"] is True
    assert nodes["n-1"]["usage"]["expires_at"] == ctx.clock.now() + 30


def test_a_usage_report_naming_an_unknown_node_is_refused_whole(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    body = {"reports": [{"node": "n-1", "busy": True}, {"node": "i-nope", "busy": True}]}
    answer = client.post("/api/v1/usage", json=body, headers=AUTH)
    assert answer.status_code == 404
    assert "i-nope" in answer.json()["detail"]
    assert ctx.ledger.usage(ctx.clock.now()) == {}
    assert api_records.audit_log(ctx.ledger.store) == []


def test_malformed_usage_reports_are_refused(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    for report in ({"node": "n-1"}, {"node": "n-1", "busy": True, "ttl_seconds": 0}, {"busy": 1}):
        answer = client.post("/api/v1/usage", json={"reports": [report]}, headers=AUTH)
        assert answer.status_code == 422, report
    assert ctx.ledger.usage(ctx.clock.now()) == {}


def test_a_drain_asked_for_a_node_is_kept_for_the_loop(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    answer = client.post("/api/v1/nodes/i-1/drain", headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["node_id"] == "n-1"
    assert set(ctx.ledger.drain_asks()) == {"n-1"}
    unknown = client.post("/api/v1/nodes/i-nope/drain", headers=AUTH)
    assert unknown.status_code == 404
    assert "i-nope" in unknown.json()["detail"]


def test_a_drain_ack_lets_a_draining_node_go(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.DRAINING, "i-1")
    add_node(ctx.ledger, "n-2", Status.READY, "i-2")
    answer = client.post("/api/v1/nodes/n-1/drain/ack", headers=AUTH)
    assert answer.status_code == 200
    assert set(ctx.ledger.drain_acks()) == {"n-1"}
    not_draining = client.post("/api/v1/nodes/n-2/drain/ack", headers=AUTH)
    assert not_draining.status_code == 404
    assert "ready" in not_draining.json()["detail"]
    unknown = client.post("/api/v1/nodes/nope/drain/ack", headers=AUTH)
    assert unknown.status_code == 404
    assert set(ctx.ledger.drain_acks()) == {"n-1"}
    actions = [e.action for e in api_records.audit_log(ctx.ledger.store)]
    assert actions == ["node.drain.ack"]


def test_the_node_list_without_history_gives_each_nodes_last_reason(make_api: MakeApi) -> None:
    client, ctx = make_api()
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    [node] = client.get("/api/v1/nodes?history=false", headers=AUTH).json()["nodes"]
    assert node["reason"] == "now ready"
    assert [h["status"] for h in node["history"]] == ["ready"]
