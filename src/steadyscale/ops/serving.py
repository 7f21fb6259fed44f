"""An HTTP server on a background daemon thread, stopped cleanly: what the metrics
endpoint and the emulator both serve on."""

from __future__ import annotations

import threading
from typing import Protocol


class Serving(Protocol):
    """A socketserver-style server (wsgiref's and werkzeug's are)."""

    def serve_forever(self, poll_interval: float = ...) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


class ServerThread:
    """Runs ``server.serve_forever`` on a daemon thread until ``stop``."""

    def __init__(self, server: Serving, *, name: str, poll_interval: float) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    def stop(self) -> None:
        """Stop serving, close the socket and wait (a little) for the thread to end."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
