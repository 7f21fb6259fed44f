"""One ``steadyscale run`` replica as a process a test can watch and hurt: whether it leads
(its ``/metrics`` gauge ``steadyscale_leader``), SIGKILL, SIGSTOP and SIGCONT, and which of
its TCP connections go to the database (so exactly those can be cut).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from steadyscale.testing.chaos import daemon_env
from steadyscale.testing.postgres import free_port

_GAUGE = re.compile(r"^(steadyscale_\w+?)(?:\{[^}]*\})?\s+(\S+)\s*$", re.MULTILINE)


class Replica:
    """``steadyscale run CONFIG --replica-id ID --metrics 127.0.0.1:PORT``, its output in
    ``<log_dir>/<id>.log`` (a file, never a pipe nobody reads, which would fill and block
    it)."""

    def __init__(self, replica_id: str, config: Path, log_dir: Path) -> None:
        self.replica_id = replica_id
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{replica_id}.log"
        self.paused = False
        with self.log_path.open("a") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "steadyscale",
                    "run",
                    str(config),
                    "--replica-id",
                    replica_id,
                    "--metrics",
                    f"127.0.0.1:{self.metrics_port}",
                    "--quiet",
                    "--json",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=daemon_env(),
            )

    def __repr__(self) -> str:
        return f"Replica({self.replica_id}, pid {self.proc.pid})"

    # ------------------------------------------------------------------ watching

    def gauges(self) -> dict[str, float] | None:
        """Its ``steadyscale_*`` gauges now; None when it does not answer (paused, dead,
        not serving yet)."""
        if self.paused or self.proc.poll() is not None:
            return None
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                text = answer.read().decode("utf-8", errors="replace")
        except (OSError, urllib.error.URLError):
            return None
        found: dict[str, float] = {}
        for name, value in _GAUGE.findall(text):
            with contextlib.suppress(ValueError):
                found[name] = float(value)
        return found

    def leads(self) -> bool | None:
        """Whether it says it leads; None when it does not answer."""
        gauges = self.gauges()
        if gauges is None or "steadyscale_leader" not in gauges:
            return None
        return gauges["steadyscale_leader"] == 1.0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def db_ports(self, server_port: int) -> list[int]:
        """The local ports of its connections to the database on ``server_port``."""
        return tcp_ports_to(self.proc.pid, server_port)

    # ------------------------------------------------------------------ hurting

    def kill(self) -> None:
        """SIGKILL: it dies wherever it is, in the middle of anything."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: it freezes wherever it is, still believing what it believed."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int | None:
        """SIGTERM (after SIGCONT if paused), then SIGKILL if it will not end; its exit
        code."""
        if self.alive():
            if self.paused:
                self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


def tcp_ports_to(pid: int, server_port: int) -> list[int]:
    """The local ports of process ``pid``'s TCP connections to ``server_port``: what a
    server's ``pg_stat_activity.client_port`` shows of them."""
    inodes = _socket_inodes(pid)
    ports: list[int] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                    ports.append(int(local.rsplit(":", 1)[1], 16))
    return sorted(ports)


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                target = os.readlink(fd_dir / fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes
