"""The leader lease on a real PostgreSQL server: takeover only after expiry (by the
database's clock), an epoch that only grows, an ex-leader's renewal refused, and a cut
connection read as "not leading" and reopened by the next call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from steadyscale.config import HaConfig
from steadyscale.config.ha import idle_transaction_limit
from steadyscale.config.location import DatabaseURL
from steadyscale.store.errors import LedgerUnavailableError
from steadyscale.store.ledger import Ledger
from steadyscale.store.postgres import PostgresStore
from steadyscale.store.postgres_lease import PostgresLease, fence_query
from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.replicas import wait_for


@pytest.fixture
def lease_pair(postgres: str) -> Iterator[tuple[PostgresLease, PostgresLease]]:
    a = PostgresLease(postgres, holder="a", ttl_seconds=30)
    b = PostgresLease(postgres, holder="b", ttl_seconds=30)
    yield a, b
    a.close()
    b.close()


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _expire(server: PostgresServer, url: str) -> None:
    """Move the lease's expiry into the past, as the TTL passing would (without waiting)."""
    server.sql(
        "UPDATE steadyscale_lease SET expires_at = clock_timestamp() - interval '1 second'",
        _database(url),
    )


def test_the_first_replica_takes_the_lease_with_epoch_1(
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, b = lease_pair
    assert a.acquire() == 1
    holder = b.current()
    assert holder is not None and holder.holder == "a" and holder.epoch == 1
    assert 25 < holder.expires_in_seconds <= 30


def test_another_replica_cannot_take_an_unexpired_lease(
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, b = lease_pair
    assert a.acquire() == 1
    assert b.acquire() is None
    assert a.renew(1)
    assert b.acquire() is None


def test_takeover_after_expiry_increments_the_epoch_and_fences_the_ex_leader(
    postgres_server: PostgresServer,
    postgres: str,
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, b = lease_pair
    assert a.acquire() == 1
    _expire(postgres_server, postgres)
    assert b.acquire() == 2
    assert not a.renew(1)  # the ex-leader learns it lost
    assert a.acquire() is None  # and cannot take it back while b holds it
    assert b.renew(2)
    _expire(postgres_server, postgres)
    assert a.acquire() == 3


def test_the_same_holder_retaking_its_lease_gets_a_new_epoch(
    lease_pair: tuple[PostgresLease, PostgresLease], postgres: str
) -> None:
    a, _ = lease_pair
    assert a.acquire() == 1
    restarted = PostgresLease(postgres, holder="a", ttl_seconds=30)
    try:
        assert restarted.acquire() == 2  # no wait for its own former lease, but fenced
        assert not a.renew(1)
    finally:
        restarted.close()


def test_release_hands_over_at_once_and_keeps_the_epoch_growing(
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, b = lease_pair
    assert a.acquire() == 1
    b.release(1)  # not b's: nothing happens
    assert b.acquire() is None
    a.release(1)
    assert b.acquire() == 2


def test_a_cut_connection_is_not_leading_and_the_next_call_reconnects(
    postgres_server: PostgresServer,
    postgres: str,
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, _ = lease_pair
    assert a.acquire() == 1
    assert postgres_server.drop_connections(_database(postgres)) >= 1
    assert not a.renew(1)  # the call on the cut connection fails: not leading
    assert a.renew(1)  # the next call reconnects; nobody took over, so epoch 1 stands


def test_an_unreachable_database_is_not_leading() -> None:
    lease = PostgresLease(
        "postgresql://nobody@127.0.0.1:1/none", holder="a", ttl_seconds=5, timeout_seconds=1
    )
    assert lease.acquire() is None
    assert not lease.renew(1)
    assert lease.current() is None


def test_the_fence_query_is_true_only_for_the_current_epoch(
    postgres_server: PostgresServer,
    postgres: str,
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, _ = lease_pair
    assert a.acquire() == 1
    sql, params = fence_query(1)
    assert params == (1, "leader") and sql.count("?") == 2
    check = "SELECT epoch = {} FROM steadyscale_lease WHERE name = 'leader'"
    assert postgres_server.sql(check.format(1), _database(postgres)).strip() == "t"
    assert postgres_server.sql(check.format(0), _database(postgres)).strip() == "f"


def test_a_ttl_must_be_positive(postgres: str) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        PostgresLease(postgres, holder="a", ttl_seconds=0)


def test_expires_in_is_read_on_the_database_clock(
    postgres_server: PostgresServer,
    postgres: str,
    lease_pair: tuple[PostgresLease, PostgresLease],
) -> None:
    a, b = lease_pair
    assert b.expires_in() is None  # nobody ever held it
    assert a.acquire() == 1
    remaining = b.expires_in()
    assert remaining is not None and 25 < remaining <= 30
    _expire(postgres_server, postgres)
    expired = b.expires_in()
    assert expired is not None and expired < 0


@pytest.mark.parametrize("idle_limit", [True, False], ids=["idle-limit", "mid-pipeline"])
def test_a_leader_paused_inside_a_ledger_transaction_does_not_hold_a_takeover_back(
    postgres_server: PostgresServer,
    postgres: str,
    lease_pair: tuple[PostgresLease, PostgresLease],
    idle_limit: bool,
) -> None:
    """The leader's fence holds a row lock on the lease in each write transaction; a
    leader frozen mid-transaction (SIGSTOP, a VM pause) would hold it forever, and the
    successor's takeover would wait on it. A replica's ledger sessions end an idle
    transaction before the lease could expire; and where the server's limit is not armed
    (a client frozen mid-pipeline: no session limit here), the successor ends the frozen
    write itself once the lease expired."""
    a, b = lease_pair
    epoch = a.acquire()
    assert epoch == 1
    ha = HaConfig(lease_ttl_seconds=2, renew_interval_seconds=0.5, margin_seconds=1)
    limit = idle_transaction_limit(ha) if idle_limit else ()
    ledger = Ledger(replace(DatabaseURL(postgres), settings=limit))
    store = ledger.store
    assert isinstance(store, PostgresStore)
    store.fence = fence_query(epoch)
    _expire(postgres_server, postgres)  # its lease runs out while it is frozen below
    frozen = store.transaction()
    frozen.__enter__()  # the fence's row lock on the lease is taken here
    store.execute("INSERT INTO meta (key, value) VALUES ('frozen', 'mid-write')")
    try:
        assert b.acquire() == 2  # waits at most the idle limit (1 s), within its lock timeout
        with pytest.raises(LedgerUnavailableError):
            frozen.__exit__(None, None, None)  # the frozen write never lands
        assert ledger.meta("frozen") is None
    finally:
        ledger.close()


# A replica's lease, renewed once on a line from stdin: run in a process of its own, so
# that the test can freeze it (SIGSTOP) in the middle of the renewal.
_RENEWER = """
import sys
from steadyscale.store.postgres_lease import PostgresLease
lease = PostgresLease(sys.argv[1], holder="a", ttl_seconds=30)
print(lease.acquire(), flush=True)
sys.stdin.readline()
print(lease.renew(1), flush=True)
"""


def _lease_sessions(server: PostgresServer, url: str, where: str) -> int:
    return int(
        server.sql(
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE application_name = 'steadyscale-lease/a' AND {where}",
            _database(url),
        ).strip()
    )


def test_a_leader_frozen_while_renewing_behind_its_own_write_does_not_hold_a_takeover_back(
    postgres_server: PostgresServer, postgres: str
) -> None:
    """The leader's renewal waits on the row lock of its own fenced write; frozen there,
    the renewal goes through once the successor ended that write. It must commit on the
    server by itself: a renewal left open in a transaction would hold the lease row, and
    every takeover after it, for as long as the leader stays frozen."""
    renewer = subprocess.Popen(
        [sys.executable, "-c", _RENEWER, postgres],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert renewer.stdin is not None and renewer.stdout is not None
    ledger = Ledger(DatabaseURL(postgres))
    successor = PostgresLease(postgres, holder="b", ttl_seconds=30, timeout_seconds=2)
    try:
        assert renewer.stdout.readline().strip() == "1"
        _expire(postgres_server, postgres)
        store = ledger.store
        assert isinstance(store, PostgresStore)
        store.fence = fence_query(1)
        frozen = store.transaction()
        frozen.__enter__()  # the fence's row lock on the lease: the renewal waits on it
        renewer.stdin.write("renew\n")
        renewer.stdin.flush()
        wait_for(
            lambda: _lease_sessions(postgres_server, postgres, "wait_event_type = 'Lock'"),
            30,
            "the renewal to wait on the leader's own write",
        )
        os.kill(renewer.pid, signal.SIGSTOP)
        # Ends the frozen write; the renewal then extends the lease, the leader frozen.
        assert successor.acquire() is None
        with pytest.raises(LedgerUnavailableError):
            frozen.__exit__(None, None, None)
        assert _lease_sessions(postgres_server, postgres, "xact_start IS NOT NULL") == 0
        postgres_server.sql(
            "SET statement_timeout = '10s'; UPDATE steadyscale_lease "
            "SET expires_at = clock_timestamp() - interval '1 second'",
            _database(postgres),
        )
        assert successor.acquire() == 2
    finally:
        os.kill(renewer.pid, signal.SIGCONT)
        renewer.kill()
        renewer.wait()
        successor.close()
        ledger.close()
