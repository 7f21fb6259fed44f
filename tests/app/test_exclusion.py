"""I8 across daemons and commands on one real PostgreSQL ledger: ``ledger import``,
``adopt`` and ``carry-over`` are refused with one line naming the leader while a replica
leads, and change nothing; a replica does not take the lease while such a command holds
the ledger's writer lock, and leads once it ended; ``request`` writes demand beside a
leader (user input, not an actor's write); ``status`` shows who holds the lease."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from steadyscale.app.cli import main
from steadyscale.app.replication import Replication, build_replication
from steadyscale.app.runtime import build_metrics
from steadyscale.config import HaConfig
from steadyscale.core.resources import DemandItem
from steadyscale.loop.leadership import Role
from steadyscale.retries.clock import FakeClock
from steadyscale.store.errors import FencedError, StoreUnavailableError
from steadyscale.store.ledger import Ledger
from steadyscale.store.postgres import PostgresStore
from steadyscale.store.postgres_lease import fence_query
from tests.app.test_postgres_ledger import _config
from tests.app.test_rename import EC2, _cli
from tests.app.test_takeover import cloud  # noqa: F401 - the fixture
from tests.cluster import cluster_config

CONFIG = cluster_config(provider={"type": "memory"}, loop_interval_seconds=5)


def _replication(url: str, name: str, ledger: Ledger, clock: FakeClock) -> Replication:
    store = ledger.store
    assert isinstance(store, PostgresStore)

    def set_fence(fence: tuple[str, tuple[object, ...]]) -> None:
        store.fence = fence

    return build_replication(
        HaConfig(),
        url=url,
        replica_id=name,
        metrics=build_metrics(CONFIG, FakeClock(0.0)),
        set_fence=set_fence,
        on_lead=lambda: None,
        errors=(FencedError, StoreUnavailableError),
        clock=clock,
    )


@pytest.fixture
def leader(postgres: str) -> Iterator[Ledger]:
    """A replica named r1 leading the ledger at ``postgres``, its ledger fenced by its epoch."""
    ledger = Ledger(postgres)
    replication = _replication(postgres, "r1", ledger, FakeClock(0.0))
    state = replication.leadership.step()
    assert state.role is Role.LEADER and state.epoch == 1
    replication.fence(state.epoch)
    yield ledger
    replication.close()
    ledger.close()


def _refused(err: str) -> None:
    assert err.startswith("steadyscale: error: replica r1 leads ledger postgresql://"), err
    assert "(lease epoch 1, expires in " in err and err.count("\n") == 1


def test_import_and_carry_over_are_refused_while_a_replica_leads(
    tmp_path: Path, postgres: str, leader: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    file_config = _config(tmp_path, str(tmp_path / "a.db"))
    Ledger(tmp_path / "a.db").close()
    backup = tmp_path / "backup.json"
    assert main(["ledger", "export", str(file_config), "-o", str(backup)]) == 0
    (tmp_path / "pg").mkdir()
    config = _config(tmp_path / "pg", postgres)
    capsys.readouterr()
    assert main(["ledger", "import", str(config), str(backup)]) == 2
    _refused(capsys.readouterr().err)
    assert main(["ledger", "carry-over", str(config), "--from", "old"]) == 2
    _refused(capsys.readouterr().err)
    leader.set_demand([DemandItem(bundle={"CPU": 2}, count=1)], 5.0)  # it still leads


def test_adopt_is_refused_while_a_replica_leads(
    cloud: EC2,  # noqa: F811 - the fixture
    postgres: str,
    leader: Ledger,
) -> None:
    config = cloud.config("a", ledger=postgres)
    result = _cli("ledger", "adopt", config)
    assert result.returncode == 2, result.stdout
    _refused(result.stderr)
    assert leader.nodes(include_terminal=True) == []


def test_a_replica_takes_no_lease_while_a_command_holds_the_ledger_and_leads_after(
    postgres: str,
) -> None:
    clock = FakeClock(0.0)
    ledger = Ledger(postgres)
    replication = _replication(postgres, "r1", ledger, clock)
    command = Ledger(postgres)  # as `ledger import` holds it
    try:
        command.acquire_writer()
        assert replication.leadership.step().role is Role.FOLLOWER
        clock.advance(HaConfig().renew_interval_seconds)
        assert replication.leadership.step().role is Role.FOLLOWER
        command.close()  # the command ends
        clock.advance(HaConfig().renew_interval_seconds)
        state = replication.leadership.step()
        assert state.role is Role.LEADER and state.epoch == 1
    finally:
        command.close()
        replication.close()
        ledger.close()


def test_request_writes_demand_beside_a_leading_replica(
    tmp_path: Path, postgres: str, leader: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    store = leader.store
    assert isinstance(store, PostgresStore) and store.fence == fence_query(1)
    config = _config(tmp_path, postgres)
    assert main(["request", str(config), "--bundle", "CPU=2", "--count", "3"]) == 0
    assert leader.demand() == [DemandItem(bundle={"CPU": 2}, count=3)]
    assert main(["status", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["pending_demand"] == 3


def test_status_shows_who_holds_the_lease(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, postgres)
    Ledger(postgres).close()
    assert main(["status", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lease"] is None  # no replica ever ran
    ledger = Ledger(postgres)
    replication = _replication(postgres, "r1", ledger, FakeClock(0.0))
    try:
        assert replication.leadership.step().epoch == 1
        assert main(["status", str(config), "--json"]) == 0
        lease = json.loads(capsys.readouterr().out)["lease"]
        assert lease["holder"] == "r1" and lease["epoch"] == 1
        assert 10 < lease["expires_in_seconds"] <= 15  # the default TTL, by the database
        assert main(["status", str(config)]) == 0
        assert "leader: r1 (lease epoch 1, expires in " in capsys.readouterr().out
        replication.leadership.release()
        assert main(["status", str(config)]) == 0
        assert "leader: none (the lease of r1, epoch 1, expired " in capsys.readouterr().out
    finally:
        replication.close()
        ledger.close()
