"""``steadyscale run CONFIG --api 127.0.0.1:0`` as a child process for the web page's
browser tests, the worker-pool example's test and the page's screenshot: started, its API's
address read from its own output ("API and web page at URL"), stopped with SIGTERM as a
supervisor would. Its output is read all along by a thread (a pipe nobody reads fills and
blocks the daemon) and kept for the failure message."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from steadyscale.testing.chaos import daemon_env

_ADDRESS = re.compile(r"API and web page at (http://\S+?)/?\s*$")


class ApiDaemon:
    """One daemon serving the API; ``url`` ends with ``/`` (the page)."""

    def __init__(
        self,
        config: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.env = {**daemon_env(), **(env or {})}
        self._args = list(args)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 60.0) -> ApiDaemon:
        return self.launch().serving(timeout)

    def launch(self) -> ApiDaemon:
        """Start the process (several can start at once, then each waits ``serving``)."""
        command = [sys.executable, "-m", "steadyscale", "run", str(self.config)]
        self.proc = subprocess.Popen(
            [*command, "--api", "127.0.0.1:0", *self._args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def serving(self, timeout: float = 60.0) -> ApiDaemon:
        """Wait until it serves its API (its address in ``url``)."""
        deadline = time.monotonic() + timeout
        while not self.url:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"no API within {timeout:g} s:\n{self.log()}") from None
            if line is None:
                raise RuntimeError(f"the daemon ended before serving its API:\n{self.log()}")
            match = _ADDRESS.search(line)
            if match:
                self.url = match.group(1) + "/"
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def log(self) -> str:
        return "".join(self.output[-60:])

    def terminate(self) -> None:
        """SIGTERM, without waiting (``stop`` waits)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not end in time; its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ApiDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
