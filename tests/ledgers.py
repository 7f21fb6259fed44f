"""Ledgers on both backends for the tests: ``ledger_at(name)`` is where the ledger called
``name`` is kept in this test, a SQLite file in ``tmp_path`` or a new PostgreSQL database
on the test server (the same name gives the same ledger within a test)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from steadyscale.testing.postgres import PostgresServer

LedgerAt = Callable[[str], str | Path]
BACKENDS = ["sqlite", "postgres"]


def ledger_factory(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerAt:
    backend: str = request.param
    made: dict[str, str | Path] = {}

    def at(name: str) -> str | Path:
        if name not in made:
            if backend == "sqlite":
                made[name] = tmp_path / name
            else:
                server: PostgresServer = request.getfixturevalue("postgres_server")
                made[name] = server.create_database(f"t{uuid.uuid4().hex[:16]}")
        return made[name]

    return at


def run_sql(request: pytest.FixtureRequest, where: str | Path, statement: str) -> None:
    """Run ``statement`` on the ledger at ``where`` behind steadyscale's back."""
    if isinstance(where, Path):
        db = sqlite3.connect(where)
        db.execute(statement)
        db.commit()
        db.close()
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        server.sql(statement, database=where.rsplit("/", 1)[1])
