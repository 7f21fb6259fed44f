"""The test PostgreSQL server is a real one: it answers SQL, restarts with its data, and
cuts client connections on demand."""

from __future__ import annotations

import subprocess

from steadyscale.testing.postgres import PostgresServer


def test_a_database_per_test_answers_sql(postgres_server: PostgresServer, postgres: str) -> None:
    database = postgres.rsplit("/", 1)[1]
    postgres_server.sql("CREATE TABLE t (x INT)", database)
    postgres_server.sql("INSERT INTO t VALUES (41), (1)", database)
    assert postgres_server.sql("SELECT sum(x) FROM t", database).strip() == "42"
    assert postgres.startswith("postgresql://") and "127.0.0.1" in postgres


def test_data_survives_a_restart_and_connections_can_be_cut() -> None:
    with PostgresServer() as server:
        server.create_database("kept")
        server.sql("CREATE TABLE t (x INT); INSERT INTO t VALUES (7)", "kept")
        server.restart(mode="immediate")
        assert server.sql("SELECT x FROM t", "kept").strip() == "7"
        # A client that holds a connection open is cut off.
        client = subprocess.Popen(
            [str(server.bindir / "psql"), "-X", server.url("kept"), "-c", "SELECT pg_sleep(30)"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Wait for the client's session by asking the server (each ask is a round trip).
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'"
            for _ in range(2000):
                if server.sql(waiting).strip() == "1":
                    break
            assert server.drop_connections("kept") == 1
            assert client.wait(timeout=30) != 0
        finally:
            client.kill()
