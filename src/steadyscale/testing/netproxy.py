"""A TCP proxy on 127.0.0.1 in front of a server (the test PostgreSQL server) that adds
latency, as a network between a daemon and its database would: what a client sends
reaches the server ``delay`` seconds later, however much follows it (sends are not held
behind one another, so a pipelined batch costs one delay, a round trip per row one
each). Tests and the ledger benchmark put it in front of the database.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time


class NetProxy:
    """Forwards every connection to ``127.0.0.1:upstream_port``; what clients send goes on
    ``delay`` seconds after it came. ``sends`` counts the chunks clients sent."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.sends = 0
        self._count = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="netproxy").start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, upstream]
            due: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._pump, args=(client, upstream, due), daemon=True).start()
            threading.Thread(target=self._later, args=(due, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _later(self, due: queue.Queue[tuple[float, bytes]], target: socket.socket) -> None:
        """Send each chunk when it is due (an empty one: the client hung up)."""
        try:
            while True:
                at, chunk = due.get()
                if not chunk:
                    break
                time.sleep(max(0.0, at - time.monotonic()))
                target.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        due: queue.Queue[tuple[float, bytes]] | None,
    ) -> None:
        try:
            while chunk := source.recv(65536):
                if due is None:
                    target.sendall(chunk)
                    continue
                with self._count:
                    self.sends += 1
                due.put((time.monotonic() + self.delay, chunk))
        except OSError:
            pass
        finally:
            if due is not None:
                due.put((0.0, b""))  # the rest is sent, then the upstream shut down
            else:
                for sock in (source, target):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def url(self, url: str) -> str:
        """``url`` (of the upstream server) through this proxy."""
        return url.replace(f":{self.upstream_port}/", f":{self.port}/")

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            sock.close()
