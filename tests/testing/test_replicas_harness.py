"""The replicas harness's own parts: cutting exactly one process's database connections,
the failover schedule (demand wave, seeded kill moments) and the capacity it integrates."""

from __future__ import annotations

import itertools
import random
import subprocess

from steadyscale.testing.failover import CapacitySampler, Step, demand_at, kill_moments, wave
from steadyscale.testing.postgres import PostgresServer
from steadyscale.testing.postgres_faults import TableLock, cut_connections, waiting_for_a_lock
from steadyscale.testing.replica_process import tcp_ports_to
from steadyscale.testing.replicas import wait_for


def test_only_the_connections_of_the_process_named_are_cut(
    postgres_server: PostgresServer, postgres: str
) -> None:
    database = postgres.rsplit("/", 1)[1]
    psql = str(postgres_server.bindir / "psql")
    clients = [
        subprocess.Popen(
            [psql, "-X", postgres, "-c", "SELECT pg_sleep(60)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND query LIKE 'SELECT pg_sleep%'"
    )
    try:
        wait_for(lambda: postgres_server.sql(sleeping).strip() == "2", 30, "two sessions")
        ports = tcp_ports_to(clients[0].pid, postgres_server.port)
        assert len(ports) == 1
        assert cut_connections(postgres_server, database, ports) == 1
        assert clients[0].wait(timeout=30) != 0
        assert clients[1].poll() is None
        assert postgres_server.sql(sleeping).strip() == "1"
    finally:
        for client in clients:
            client.kill()
            client.wait()


def test_a_write_waits_inside_its_transaction_while_the_tables_are_held(
    postgres_server: PostgresServer, postgres: str
) -> None:
    database = postgres.rsplit("/", 1)[1]
    postgres_server.sql("CREATE TABLE nodes (x INT)", database)
    psql = str(postgres_server.bindir / "psql")
    with TableLock(postgres_server, database, ["nodes"]) as lock:
        writer = subprocess.Popen(
            [psql, "-X", "-v", "ON_ERROR_STOP=1", postgres, "-c", "INSERT INTO nodes VALUES (1)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: waiting_for_a_lock(
                    postgres_server, database, tcp_ports_to(writer.pid, postgres_server.port)
                ),
                30,
                "the insert to wait",
            )
            # Reads go on meanwhile.
            assert postgres_server.sql("SELECT count(*) FROM nodes", database).strip() == "0"
            lock.release()
            assert writer.wait(timeout=30) == 0
        finally:
            writer.kill()
            writer.wait()
    assert postgres_server.sql("SELECT count(*) FROM nodes", database).strip() == "1"


def test_demand_rises_and_falls_in_steps_to_nothing() -> None:
    steps = wave(40, 20)
    assert steps[0] == Step(0, 10) and steps[-1].demand == 0
    assert max(s.demand for s in steps) == 40 and steps[-1].at < 20
    peaks = [s.at for s in steps if s.demand == 40]
    assert len(peaks) == 2 and any(s.demand < 40 for s in steps if peaks[0] < s.at < peaks[1])
    assert demand_at(steps, 0.5) == 10 and demand_at(steps, 19.9) == 0


def test_kill_moments_are_seeded_and_leave_room_for_each_takeover() -> None:
    moments = kill_moments(10, 80, 6, random.Random(13))
    assert moments == kill_moments(10, 80, 6, random.Random(13))
    assert moments != kill_moments(10, 80, 6, random.Random(14))
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert len(moments) == 10 and min(gaps) >= 6 - 1e-9
    assert moments[0] >= 3 and moments[-1] <= 80 - 3 - 6


def test_capacity_counts_what_runs_up_to_the_demand_of_the_moment() -> None:
    steps = [Step(0, 4), Step(10, 2)]
    sampler = CapacitySampler(lambda: 0, steps)
    # Running 0 then 6 (capped at 4) until 10, then 6 (capped at 2) until 20.
    sampler.samples = [(0, 0), (5, 6), (10, 6)]
    assert sampler.delivered(20) == 5 * 4 + 10 * 2
    assert sampler.delivered(7) == 2 * 4
    assert sampler.beyond_demand(20) == 5 * 2 + 10 * 4
