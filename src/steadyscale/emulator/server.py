"""The emulator's lifecycle: an EC2 endpoint on 127.0.0.1 served from a background thread
(bind first, so a busy port is a clear error), stopped cleanly, with conveniences for tests
and scripts: a boto3 client, the ground truth, the call log, faults and interruptions.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from socketserver import ThreadingMixIn
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from steadyscale.ec2model.calllog import CallLog
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.ec2model.settings import EmulatorSettings
from steadyscale.emulator.dispatch import EmulatorApp
from steadyscale.errors import EmulatorStartError
from steadyscale.ops.serving import ServerThread
from steadyscale.retries.clock import Clock, ScaledClock

log = logging.getLogger("steadyscale.emulator")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s", self.requestline, code)

    def log_error(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class Emulator:
    """An EC2 endpoint on 127.0.0.1, in a background thread. Use as a context manager.

    >>> with Emulator(build_settings(profile="realistic")) as emu:
    ...     ec2 = emu.client()
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings or EmulatorSettings()
        self.clock: Clock = clock or ScaledClock(self.settings.time_scale, origin=time.time())
        self.app = EmulatorApp(self.settings, self.clock)
        self.host = host
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._listener: socket.socket | None = None
        self._serving: ServerThread | None = None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the emulator is not running")
        return int(self._listener.getsockname()[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        # Bind first so a busy port is our clear error, not werkzeug's exit.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self._requested_port))
            listener.listen(128)
        except OSError as exc:
            listener.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise EmulatorStartError(
                    f"port {self._requested_port} on {self.host} is in use; pick another "
                    "with --port, or --port 0 for a free one"
                ) from None
            raise EmulatorStartError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror or exc}"
            ) from None
        self._listener = listener
        self._server = make_server(
            self.host,
            listener.getsockname()[1],
            self.app,
            threaded=True,
            request_handler=_QuietHandler,
            fd=listener.fileno(),
        )
        if isinstance(self._server, ThreadingMixIn):
            self._server.daemon_threads = True
        self._serving = ServerThread(self._server, name="steadyscale-emulator", poll_interval=0.1)
        return self

    def stop(self) -> None:
        if self._serving is None:
            return
        self._serving.stop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._server = None
        self._serving = None
        self.app.ec2.close()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        if self._serving is None:
            self.start()
        while self._serving is not None and self._serving.alive():
            self._serving.join(timeout=0.5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ conveniences

    def client(self, region: str = "us-east-1", **config: Any) -> Any:
        """A boto3 EC2 client for this endpoint, with dummy credentials."""
        options: dict[str, Any] = {"retries": {"mode": "standard", "total_max_attempts": 1}}
        options.update(config)
        return boto3.client(
            "ec2",
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(**options),
        )

    def now(self) -> float:
        return self.clock.now()

    def truth(
        self, region: str = "us-east-1", *, include_gone: bool = False
    ) -> list[TrackedInstance]:
        """Ground truth: every instance as it really is, untouched by any fault."""
        return self.app.control.truth(region, include_gone=include_gone)

    def pools(
        self, instance_types: list[str], region: str = "us-east-1"
    ) -> list[dict[str, object]]:
        """Ground truth of the pools of these types: price now, room, out of capacity."""
        return self.app.control.pools(region, instance_types)

    @property
    def calls(self) -> CallLog:
        return self.app.calls

    def interrupt(self, instance_ids: list[str], region: str = "us-east-1") -> list[str]:
        """Interrupt instances now, as EC2 reclaims spot capacity."""
        return self.app.control.interrupt(region, instance_ids)

    def inject(
        self, fault: Fault | str, action: str = "*", count: int = 1, region: str = "us-east-1"
    ) -> None:
        """Make the next ``count`` calls of ``action`` hit ``fault``."""
        self.app.control.inject(region, Fault(fault), action, count)

    def drains(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """The drain calls the control API received (``POST /_steadyscale/drain/{id}``)."""
        return self.app.control.drains(instance_id)

    def set_node_health(
        self, instance_ids: list[str], healthy: bool | None, region: str = "us-east-1"
    ) -> None:
        """What node health probes of these instances answer from now on (None: healthy
        exactly while the instance runs, the default)."""
        self.app.control.set_node_health(region, instance_ids, healthy)
