"""``steadyscale.client`` against the API served by uvicorn on 127.0.0.1 (a free port):
every endpoint through the typed client, refusals as ApiError with the server's detail,
no daemon as ApiUnreachable, and the event stream of node moves and loop decisions."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from steadyscale.api.app import create_app
from steadyscale.api.context import ApiContext
from steadyscale.api.events import EventHub, Samples
from steadyscale.api.feed import MovesFeed
from steadyscale.api.server import ApiServer
from steadyscale.client import ApiError, ApiUnreachable, Client, DemandItem, UsageReportIn
from steadyscale.core.lifecycle import Status
from steadyscale.errors import SteadyscaleError
from steadyscale.store.ledger import Ledger
from tests.api.conftest import READ, WRITE, make_context
from tests.api.test_workload import add_node


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ApiContext]]:
    ledger = Ledger(tmp_path / "ledger.db")
    ctx = make_context(ledger)
    server = ApiServer(create_app(ctx), "127.0.0.1", 0).start()
    try:
        yield server.url, ctx
    finally:
        server.stop()
        ledger.close()


def test_every_endpoint_through_the_client(served: tuple[str, ApiContext]) -> None:
    url, ctx = served
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    add_node(ctx.ledger, "n-2", Status.DRAINING, "i-2")
    add_node(ctx.ledger, "n-3", Status.TERMINATED, "i-3", at=-9000.0)
    with Client(url, WRITE) as api:
        assert [n.node_id for n in api.nodes(finished=True)] == ["n-3", "n-1", "n-2"]
        assert [n.node_id for n in api.nodes(finished=True, finished_within=3600)] == [
            "n-1",
            "n-2",
        ]
        api.set_demand([DemandItem(bundle={"CPU": 1}, count=2)])
        answer = api.set_entry(
            "farm", [DemandItem(bundle={"CPU": 2}, count=1)], idempotency_key="k"
        )
        assert answer.pending_demand == 3
        assert api.demand().entries.keys() == {"default", "farm"}
        assert api.delete_entry("farm").pending_demand == 2
        assert api.status().cluster_name == "test" == api.cluster_name
        assert api.report_usage([UsageReportIn(node="i-1", busy=True, ttl_seconds=30)]) == 1
        assert [n.node_id for n in api.nodes() if n.usage and n.usage.busy] == ["n-1"]
        assert api.drain("n-1").node_id == "n-1"
        assert api.ack_drain("i-2").status == "draining"
        assert api.history(5).points == []


def test_refusals_are_api_errors_with_the_servers_detail(served: tuple[str, ApiContext]) -> None:
    url, ctx = served
    with Client(url, READ) as api:
        with pytest.raises(ApiError, match="read-only token") as refused:
            api.set_demand([DemandItem(bundle={"CPU": 1}, count=2)])
        assert refused.value.status == 403
    with Client(url, WRITE) as api, pytest.raises(ApiError, match="no live node") as unknown:
        api.drain("i-nope")
    assert unknown.value.status == 404
    with Client(url) as api, pytest.raises(ApiError, match="needs a token"):
        api.demand()
    assert ctx.ledger.demand() == []


def test_no_daemon_is_api_unreachable() -> None:
    with Client("http://127.0.0.1:9", WRITE, timeout=1) as api, pytest.raises(ApiUnreachable):
        api.demand()


def test_events_stream_node_moves_and_loop_decisions(served: tuple[str, ApiContext]) -> None:
    url, ctx = served
    feed = MovesFeed(ctx.ledger, ctx.hub)
    add_node(ctx.ledger, "n-1", Status.READY, "i-1")
    assert feed.poll() == 2  # queued, then ready
    ctx.hub.publish(1001.0, "launch", "launching 1 cpu", {"count": 1})
    with Client(url, READ) as api:
        events = list(api.events(after=0, seconds=1.0))
    assert [(e.kind, e.data.get("status")) for e in events] == [
        ("node", "queued"),
        ("node", "ready"),
        ("launch", None),
    ]
    assert events[1].data["node_id"] == "n-1" and events[1].message.startswith("n-1 ready")
    resumed = list(Client(url, READ).events(after=events[1].id, seconds=0.5))
    assert [e.kind for e in resumed] == ["launch"]


def test_a_slow_reader_never_holds_publishing_back() -> None:
    hub = EventHub(size=10)
    for n in range(1000):  # nobody reads: publishing stays an append
        hub.publish(float(n), "node", str(n))
    kept = hub.after(0)
    assert [e.id for e in kept] == list(range(991, 1001))
    assert hub.after(1000) == []


def test_history_samples_one_point_per_minute() -> None:
    samples = Samples()
    samples.note(60.0, {"ready": 1}, 3, 2)
    samples.note(119.0, {"ready": 2}, 3, 1)  # same minute: the last tick wins
    samples.note(120.0, {"ready": 3}, 3, 0)
    points = samples.points(10)
    assert [(p.minute, p.ready, p.unmet) for p in points] == [(60.0, 2, 1), (120.0, 3, 0)]


# uvicorn ends a failed start-up with sys.exit: the server's thread must end quietly.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_port_in_use_is_one_line_saying_why() -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    try:
        with pytest.raises(SteadyscaleError, match="address already in use") as refused:
            ApiServer(FastAPI(), "127.0.0.1", port).start()
    finally:
        held.close()
    assert "\n" not in str(refused.value) and "--no-api" in str(refused.value)
