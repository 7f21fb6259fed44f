"""I8 on a real PostgreSQL server: the ledger's writer lock (taken by the commands that
write it while no daemon runs: import, adopt, carry-over) and the replicas' lease exclude
each other. A command is refused while the lease is held and unexpired; no replica takes
the lease while a command holds the lock, and takes it once the command ends; a command
over an expired lease moves its epoch on, so a paused ex-leader can neither renew nor
write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steadyscale.core.resources import DemandItem
from steadyscale.store.errors import FencedError
from steadyscale.store.ledger import WRITER_LOCK, Ledger, LedgerError
from steadyscale.store.postgres import PostgresStore, advisory_key
from steadyscale.store.postgres_lease import PostgresLease, fence_query
from steadyscale.testing.postgres import PostgresServer

DEMAND = [DemandItem(bundle={"CPU": 2}, count=2)]


@pytest.fixture
def replica(postgres: str) -> Iterator[PostgresLease]:
    lease = PostgresLease(
        postgres, holder="r1", ttl_seconds=30, exclusive_key=advisory_key(WRITER_LOCK)
    )
    yield lease
    lease.close()


def _expire(server: PostgresServer, url: str) -> None:
    server.sql(
        "UPDATE steadyscale_lease SET expires_at = clock_timestamp() - interval '1 second'",
        url.rsplit("/", 1)[1],
    )


def test_a_command_is_refused_while_a_replica_holds_the_lease(
    postgres: str, replica: PostgresLease
) -> None:
    assert replica.acquire() == 1
    command = Ledger(postgres)
    try:
        with pytest.raises(LedgerError) as refused:
            command.acquire_writer()
        text = str(refused.value)
        assert text.startswith("replica r1 leads ledger postgresql://"), text
        assert "(lease epoch 1, expires in " in text and "\n" not in text
        assert "stop every steadyscale run on it first" in text
    finally:
        command.close()
    assert replica.renew(1)  # the refused command left the lease alone
    holder = replica.current()
    assert holder is not None and holder.epoch == 1


def test_no_replica_takes_the_lease_while_a_command_holds_the_lock(
    postgres: str, replica: PostgresLease
) -> None:
    command = Ledger(postgres)
    try:
        command.acquire_writer()
        assert replica.acquire() is None
        assert replica.current() is None  # not even created with an epoch
    finally:
        command.close()  # the command ends: its session lock goes with it
    assert replica.acquire() == 1


def test_a_command_over_an_expired_lease_fences_out_its_paused_holder(
    postgres_server: PostgresServer, postgres: str, replica: PostgresLease
) -> None:
    leader = Ledger(postgres)
    command = Ledger(postgres)
    try:
        assert replica.acquire() == 1
        store = leader.store
        assert isinstance(store, PostgresStore)
        store.fence = fence_query(1)
        leader.set_demand(DEMAND, 1.0)  # it leads, then pauses past its lease
        _expire(postgres_server, postgres)
        command.acquire_writer()
        assert not replica.renew(1)  # it wakes: its lease is gone,
        with pytest.raises(FencedError):  # and so are its writes
            leader.set_demand([], 2.0)
        assert replica.acquire() is None  # nor is it taken again under the command
        assert command.demand() == DEMAND
    finally:
        command.close()
        leader.close()
    assert replica.acquire() == 3  # after the command: a new epoch, past the command's
