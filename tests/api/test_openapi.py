"""The API's OpenAPI document: the checked-in ``docs/openapi.json`` is what the app serves,
and the app fuzzed from it (schemathesis, in-process) never answers with a 5xx."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from steadyscale.api.app import create_app
from steadyscale.core.lifecycle import Status
from steadyscale.store.ledger import Ledger
from tests.api.conftest import AUTH, make_context
from tests.api.test_workload import add_node

ROOT = Path(__file__).resolve().parents[2]


def test_the_checked_in_document_is_the_served_one(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    served = client.get("/openapi.json").json()
    assert served == json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert {
        "/api/v1/status",
        "/api/v1/demand",
        "/api/v1/demand/entries/{name}",
        "/api/v1/nodes",
        "/api/v1/usage",
        "/api/v1/nodes/{node}/drain",
        "/api/v1/nodes/{node}/drain/ack",
        "/api/v1/events",
        "/api/v1/history",
    } <= set(served["paths"])


def test_no_request_gets_a_server_error(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "fuzz.db")
    add_node(ledger, "n-1", Status.READY, "i-1")
    add_node(ledger, "n-2", Status.DRAINING, "i-2")
    app = create_app(make_context(ledger))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tried = 0
    for found in schema.get_all_operations():
        operation = found.ok()  # type: ignore[union-attr]  # (an Err raises its error)
        if operation.path == "/api/v1/events":  # (runs until the client leaves: tested alone)
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            response = case.call(headers=AUTH)
            case.validate_response(response, checks=[not_a_server_error])
            assert response.status_code < 500, (case.method, case.path, response.text)

        no_server_error()
        tried += 1
    ledger.close()
    assert tried >= 9
