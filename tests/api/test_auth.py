"""Who may do what: a token for everything once tokens are set, a read-write token for
every change, no change at all without one, the rate limit per token, a follower replica
refusing changes with the leader's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from steadyscale.api.tokens import Caller, RateLimits, Tokens, fingerprint, load_tokens
from steadyscale.app.api_service import refuse_open_listener
from steadyscale.config import ApiConfig
from steadyscale.errors import SteadyscaleError
from steadyscale.store import api_records
from tests.api.conftest import AUTH, READ, READ_AUTH, WRITE, MakeApi

ONE = {"demand": [{"bundle": {"CPU": 1}, "count": 3}]}
READS = ["/api/v1/status", "/api/v1/demand", "/api/v1/nodes", "/api/v1/history"]
CHANGES: list[tuple[str, str, object]] = [
    ("PUT", "/api/v1/demand", ONE),
    ("PUT", "/api/v1/demand/entries/a", ONE),
    ("DELETE", "/api/v1/demand/entries/a", None),
    ("POST", "/api/v1/usage", {"reports": []}),
    ("POST", "/api/v1/nodes/n-1/drain", None),
    ("POST", "/api/v1/nodes/n-1/drain/ack", None),
]


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_known_token_once_tokens_are_set(make_api: MakeApi, path: str) -> None:
    client, _ = make_api()
    assert client.get(path).status_code == 401
    wrong = client.get(path, headers={"Authorization": "Bearer " + "x" * 32})
    assert wrong.status_code == 401
    assert "unknown token" in wrong.json()["detail"]
    assert client.get(path, headers=READ_AUTH).status_code == 200
    assert client.get(path, headers=AUTH).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_changes_are_refused_without_a_read_write_token_and_change_nothing(
    make_api: MakeApi, method: str, path: str, body: object
) -> None:
    client, ctx = make_api()
    for headers, code in (({}, 401), ({"Authorization": "Bearer nope"}, 401), (READ_AUTH, 403)):
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == code
        assert answer.json()["detail"]
    assert "read-only" in client.request(method, path, json=body, headers=READ_AUTH).text
    assert ctx.ledger.demand() == []
    assert api_records.audit_log(ctx.ledger.store) == []


def test_without_any_token_reads_are_open_and_changes_refused(make_api: MakeApi) -> None:
    client, ctx = make_api(tokens=Tokens({}, {}))
    assert client.get("/api/v1/demand").status_code == 200
    answer = client.put("/api/v1/demand", json=ONE)
    assert answer.status_code == 403
    assert "STEADYSCALE_API_TOKEN" in answer.json()["detail"]
    assert ctx.ledger.demand() == []


def test_the_rate_limit_is_per_token_with_retry_after(make_api: MakeApi) -> None:
    client, ctx = make_api(limits=RateLimits(1.0, 2))
    assert client.get("/api/v1/demand", headers=AUTH).status_code == 200
    assert client.get("/api/v1/demand", headers=AUTH).status_code == 200
    limited = client.get("/api/v1/demand", headers=AUTH)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert client.get("/api/v1/demand", headers=READ_AUTH).status_code == 200  # its own
    ctx.clock.sleep(1.0)
    assert client.get("/api/v1/demand", headers=AUTH).status_code == 200


def test_a_follower_refuses_changes_naming_the_leader(make_api: MakeApi) -> None:
    client, ctx = make_api(leader=lambda: "replica r2 (lease epoch 7)")
    answer = client.put("/api/v1/demand", json=ONE, headers=AUTH)
    assert answer.status_code == 503
    assert "replica r2" in answer.json()["detail"]
    assert client.get("/api/v1/demand", headers=AUTH).status_code == 200
    assert ctx.ledger.demand() == []


def test_tokens_come_from_files_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "rw").write_text(f"# ops\nci:{WRITE}\n{'z' * 20}\n")
    (tmp_path / "ro").write_text(f"dash:{READ}\n")
    config = ApiConfig(tokens_file="rw", read_tokens_file="ro")
    tokens = load_tokens(config, tmp_path, {"STEADYSCALE_API_READ_TOKEN": "e" * 20})
    assert tokens.identify(WRITE) == Caller(who="ci", write=True)
    assert tokens.identify("z" * 20) == Caller(who=fingerprint("z" * 20), write=True)
    assert tokens.identify(READ) == Caller(who="dash", write=False)
    assert tokens.identify("e" * 20) == Caller(who="read-token", write=False)
    assert tokens.identify("nope") is None


def test_a_short_token_or_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SteadyscaleError, match="at least 16 characters"):
        load_tokens(ApiConfig(), tmp_path, {"STEADYSCALE_API_TOKEN": "short"})
    with pytest.raises(SteadyscaleError, match=r"api\.tokens_file: cannot read"):
        load_tokens(ApiConfig(tokens_file="missing"), tmp_path, {})


def test_a_token_in_the_config_is_refused_saying_where_tokens_go() -> None:
    with pytest.raises(ValueError, match="tokens never go in the config file"):
        ApiConfig.model_validate({"token": "s3cret-s3cret-s3cret"})


def test_a_listener_beyond_loopback_without_tokens_refuses_to_start() -> None:
    with pytest.raises(SteadyscaleError, match="no API token is set"):
        refuse_open_listener("0.0.0.0", Tokens({}, {}))
    refuse_open_listener("0.0.0.0", Tokens({WRITE: "w"}, {}))
    refuse_open_listener("127.0.0.1", Tokens({}, {}))
