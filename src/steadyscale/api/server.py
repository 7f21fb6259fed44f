"""The API served by uvicorn in a thread of the daemon: started before the first tick,
stopped with the daemon; its address known once it listens (port 0 picks a free one)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from steadyscale.errors import SteadyscaleError


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.host = host
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # (the daemon's own logging: one format, no second handler)
            access_log=False,  # (an access log line would carry query strings, not tokens,
            # but the daemon's own logs say what matters)
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="steadyscale-api", daemon=True)
        self.port = port

    def _serve(self) -> None:
        """uvicorn's run; a failed start-up (it calls sys.exit) ends the thread quietly:
        ``start`` sees the thread gone and says why in one line."""
        with contextlib.suppress(SystemExit):
            self._server.run()

    def start(self, timeout: float = 10.0) -> ApiServer:
        # What uvicorn says while it starts (a port in use, say) goes into our one line.
        said = _Said()
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.addFilter(said)
        try:
            self._thread.start()
            deadline = time.monotonic() + timeout
            while not self._server.started:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    why = said.last or "in use? another daemon?"
                    raise SteadyscaleError(
                        f"the API could not listen on {self.host}:{self.port} ({why}); set "
                        "api.listen to a free HOST:PORT, or run with --no-api"
                    )
                time.sleep(0.01)
        finally:
            uvicorn_log.removeFilter(said)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


class _Said(logging.Filter):
    """Keeps (and holds back) what uvicorn logs at or above warning while it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.last = record.getMessage()
            return False
        return True
