"""A real PostgreSQL server for tests and benchmarks: Debian's server binaries, started on
127.0.0.1 with a throwaway data directory, never a mock.

``.ci/run`` installs the server (``apt-get install postgresql``). The server refuses to run
as root, so under root it runs as the ``postgres`` system user the package creates. Admin
commands go through ``psql``, so this module needs no database driver of its own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from steadyscale.errors import SteadyscaleError

_SEARCHED = "/usr/lib/postgresql"
_BIN_ENV = "STEADYSCALE_PG_BIN"
_SUPERUSER = "steadyscale"


class PostgresMissingError(SteadyscaleError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """Where ``postgres``, ``initdb`` and ``pg_ctl`` are: ``$STEADYSCALE_PG_BIN``, else the
    newest of Debian's ``/usr/lib/postgresql/<version>/bin``."""
    given = os.environ.get(_BIN_ENV)
    if given:
        candidates = [Path(given)]
    else:
        root = Path(_SEARCHED)
        versions = sorted(
            (p for p in root.glob("*/bin") if p.parent.name.isdigit()),
            key=lambda p: int(p.parent.name),
            reverse=True,
        )
        candidates = versions
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise PostgresMissingError(
        "PostgreSQL server binaries not found (looked in "
        f"{given or _SEARCHED + '/*/bin'}): install Debian's server with "
        "`apt-get install postgresql` (.ci/run does), or set STEADYSCALE_PG_BIN"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One server on 127.0.0.1:``port`` over a temporary data directory, removed at stop."""

    def __init__(self, *, port: int | None = None, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="steadyscale-pg-"))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self._user = _server_user()
        self._initialised = False
        self._running = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PostgresServer:
        if not self._initialised:
            self._initdb()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.root} "
            # Throwaway data: no fsync (a crash of the server process still keeps every commit;
            # an OS crash would not), and enough connections for several replicas.
            "-c fsync=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            self.bindir / "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self._running = True
        return self

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no checkpoint, clients cut off)."""
        if self._running:
            self._run(self.bindir / "pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")
            self._running = False

    def restart(self, *, mode: str = "fast") -> None:
        self.stop(mode=mode)
        self.start()

    def close(self) -> None:
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ databases

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_connections(self, database: str) -> int:
        """Cut every client connection to ``database``, as a failover or a network cut
        would; how many were cut."""
        out = self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        return int(out.strip() or 0)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the superuser; its unaligned output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                _SUPERUSER,
                "-d",
                database,
                "-c",
                statement,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    # ------------------------------------------------------------------ internals

    def _initdb(self) -> None:
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run(
            self.bindir / "initdb",
            "-D",
            str(self.datadir),
            "-U",
            _SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self._initialised = True

    def _run(self, *command: Path | str) -> None:
        argv: Sequence[str] = [str(part) for part in command]
        if self._user is not None:
            argv = ["runuser", "-u", self._user.pw_name, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            log = self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log}"
            )


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: ourselves, or ``postgres`` when we are root (the
    server refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissingError(
            "running as root and there is no 'postgres' user to run the server as: "
            "install Debian's postgresql package, which creates it"
        ) from None
