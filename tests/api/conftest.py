"""An API on a real ledger (SQLite in ``tmp_path``, or PostgreSQL with ``ledger_at``) and a
fake clock, served in-process: ``api(...)`` builds one; tokens are made up per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from steadyscale.api.app import create_app
from steadyscale.api.context import ApiContext
from steadyscale.api.tokens import RateLimits, Tokens
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger
from tests.cluster import cluster_config
from tests.ledgers import BACKENDS, LedgerAt, ledger_factory

WRITE = "w-" + "a" * 30
READ = "r-" + "b" * 30
AUTH = {"Authorization": f"Bearer {WRITE}"}
READ_AUTH = {"Authorization": f"Bearer {READ}"}


def make_context(ledger: Ledger, **overrides: Any) -> ApiContext:
    settings: dict[str, Any] = {
        "config": cluster_config(),
        "ledger": ledger,
        "clock": FakeClock(1000.0),
        "tokens": Tokens({WRITE: "writer"}, {READ: "reader"}),
        "limits": RateLimits(1000.0, 1000),
        "max_body_bytes": 10_000,
    }
    settings.update(overrides)
    return ApiContext(**settings)


MakeApi = Callable[..., tuple[TestClient, ApiContext]]


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[MakeApi]:
    """``make_api(**context overrides) -> (client, context)`` on a SQLite ledger."""
    ledgers: list[Ledger] = []

    def make(**overrides: Any) -> tuple[TestClient, ApiContext]:
        ledger = overrides.pop("ledger", None) or Ledger(tmp_path / f"l{len(ledgers)}.db")
        ledgers.append(ledger)
        ctx = make_context(ledger, **overrides)
        return TestClient(create_app(ctx), raise_server_exceptions=False), ctx

    yield make
    for ledger in ledgers:
        ledger.close()


@pytest.fixture
def api(make_api: MakeApi) -> tuple[TestClient, ApiContext]:
    return make_api()


@pytest.fixture(params=BACKENDS)
def ledger_at(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerAt:
    return ledger_factory(request, tmp_path)
