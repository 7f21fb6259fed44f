"""The API of a replica: the leader takes changes; a follower serves reads and refuses
changes with a 503 that says where to send them."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from steadyscale.api.app import create_app
from steadyscale.app.api_service import api_context
from steadyscale.config import ApiConfig
from tests.app.test_replica import _replica, _world

TOKEN = "replica-" + "k" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"demand": [{"bundle": {"CPU": 2}, "count": 1}]}


def test_the_leader_takes_changes_and_a_follower_refuses_them(tmp_path: Path) -> None:
    world = _world(tmp_path)
    a, b = _replica(world, "a"), _replica(world, "b")
    a.leadership.step()  # a takes the lease; b follows
    b.leadership.step()
    env = {"STEADYSCALE_API_TOKEN": TOKEN}
    contexts = [api_context(n.runtime, ApiConfig(), str(tmp_path), env) for n in (a, b)]
    leader, follower = (TestClient(create_app(c)) for c in contexts)
    try:
        assert leader.put("/api/v1/demand", json=BODY, headers=AUTH).status_code == 200
        refused = follower.put("/api/v1/demand", json=BODY, headers=AUTH)
        assert refused.status_code == 503
        assert "follows and takes no changes" in refused.json()["detail"]
        assert follower.get("/api/v1/demand", headers=AUTH).json()["pending_demand"] == 1
    finally:
        for context in contexts:
            context.reads.close()
            context.ledger.close()
