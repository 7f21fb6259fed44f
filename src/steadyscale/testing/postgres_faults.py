"""Faults a test does to a PostgreSQL server under its clients: cut one client's sessions,
hold tables locked so a client's write transaction waits inside, and see whether it does.

All through ``PostgresServer.sql`` and ``psql``: no database driver of our own here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from steadyscale.testing.postgres import PostgresServer


def _ports(ports: Sequence[int]) -> str:
    return ", ".join(str(int(p)) for p in ports)


def cut_connections(server: PostgresServer, database: str, ports: Sequence[int]) -> int:
    """Terminate the server's sessions on ``database`` from these client ports, as a
    network cut of one client would; how many were cut."""
    if not ports:
        return 0
    out = server.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND client_port IN ({_ports(ports)})"
    )
    return int(out.strip() or 0)


def waiting_for_a_lock(server: PostgresServer, database: str, ports: Sequence[int]) -> bool:
    """Whether a session from these client ports waits for a lock now."""
    if not ports:
        return False
    out = server.sql(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND client_port IN ({_ports(ports)}) "
        "AND wait_event_type = 'Lock'"
    )
    return int(out.strip() or 0) > 0


def in_transaction(server: PostgresServer, database: str, ports: Sequence[int]) -> bool:
    """Whether a session from these client ports has a transaction open now."""
    if not ports:
        return False
    out = server.sql(
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND client_port IN ({_ports(ports)}) "
        "AND xact_start IS NOT NULL"
    )
    return int(out.strip() or 0) > 0


class TableLock:
    """A ``psql`` session holding ``tables`` in EXCLUSIVE mode (reads go on, writes wait)
    until ``release``. Use as a context manager."""

    def __init__(self, server: PostgresServer, database: str, tables: Sequence[str]) -> None:
        self._proc = subprocess.Popen(
            [str(server.bindir / "psql"), "-X", "-q", "-A", "-t", server.url(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(
            f"BEGIN;\nLOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE;\nSELECT 'locked';\n"
        )
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        if answer != "locked":
            self.release()
            raise RuntimeError(f"could not lock {', '.join(tables)}: {answer}")

    def release(self) -> None:
        """End the transaction (its locks go) and the session."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write("ROLLBACK;\n\\q\n")
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> TableLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
