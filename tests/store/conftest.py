"""Every ledger test runs on both backends: ``ledger_at`` (see ``tests.ledgers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledgers import BACKENDS, LedgerAt, ledger_factory


@pytest.fixture(params=BACKENDS)
def ledger_at(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerAt:
    return ledger_factory(request, tmp_path)
