"""A stand-in for the HTTP API while it is being built elsewhere: the endpoints the page
reads (status, nodes, history, events), from a real ledger and a real autoscaler on the
memory backend, and the page's static files. Dropped once ``steadyscale.api`` serves."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from steadyscale.app.runtime import Runtime, build_autoscaler, open_runtime
from steadyscale.config import parse_config
from steadyscale.core.resources import DemandItem
from steadyscale.loop.report import Event
from steadyscale.ops.status import collect_status
from steadyscale.store.ledger import Ledger

STATIC = Path(str(resources.files("steadyscale.api") / "static"))


def _config(tmp: Path) -> Path:
    path = tmp / "cluster.yaml"
    data = {
        "cluster_name": "web",
        "max_workers": 50,
        "upscaling_speed": 100,
        "idle_timeout_minutes": 0.1,
        "loop_interval_seconds": 0.2,
        "provider": {
            "type": "memory",
            "emulator": {"profile": "realistic", "seed": 3, "time_scale": 0.05},
        },
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 50,
            }
        },
    }
    path.write_text(json.dumps(data))
    return path


class LiveCluster:
    """A running autoscaler and the API app over its ledger, served on 127.0.0.1."""

    def __init__(self, tmp: Path) -> None:
        self.config_path = _config(tmp)
        self.runtime: Runtime = open_runtime(
            parse_config(json.loads(self.config_path.read_text())), self.config_path, daemon=True
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self.autoscaler = build_autoscaler(self.runtime, on_event=self.events.put)
        self._stop = threading.Event()
        self._loop = threading.Thread(target=self.autoscaler.run, kwargs={"stop": self._stop})
        self.server = uvicorn.Server(
            uvicorn.Config(self._app(), host="127.0.0.1", port=0, log_level="warning")
        )
        self._serving = threading.Thread(target=self.server.run)

    def start(self) -> LiveCluster:
        self._loop.start()
        self._serving.start()
        while not self.server.started:
            threading.Event().wait(0.01)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    def set_demand(self, cpu_bundles: int) -> None:
        self.runtime.ledger.set_demand(
            [DemandItem(bundle={"CPU": 2.0}, count=cpu_bundles)], self.runtime.clock.now()
        )

    def stop(self) -> None:
        self.server.should_exit = True
        self._serving.join()
        self._stop.set()
        self._loop.join()
        self.runtime.close()

    def _ledger(self) -> Ledger:
        return Ledger(self.runtime.ledger_path, readonly=True)

    def _app(self) -> FastAPI:
        app = FastAPI()
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

        @app.get("/")
        def page() -> FileResponse:
            return FileResponse(STATIC / "index.html")

        @app.get("/api/v1/status")
        def status() -> dict[str, Any]:
            ledger = self._ledger()
            try:
                return collect_status(self.runtime.config, ledger).model_dump(mode="json")
            finally:
                ledger.close()

        @app.get("/api/v1/nodes")
        def nodes() -> list[dict[str, Any]]:
            ledger = self._ledger()
            try:
                records = ledger.nodes(include_terminal=True, with_history=True)
            finally:
                ledger.close()
            return [
                {
                    "node_id": r.node_id,
                    "instance_id": r.instance_id,
                    "node_type": r.node_type,
                    "status": r.status.value,
                    "history": [
                        {"status": h.status.value, "at": h.at, "reason": h.reason}
                        for h in r.history
                    ],
                }
                for r in records
            ]

        @app.get("/api/v1/events")
        def events() -> StreamingResponse:
            return StreamingResponse(self._stream(), media_type="text/event-stream")

        return app

    async def _stream(self) -> AsyncIterator[str]:
        yield ": connected\n\n"
        while not self.server.should_exit:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)
                continue
            yield f"event: {event.kind}\ndata: {json.dumps(asdict(event))}\n\n"


def live_cluster(tmp: Path) -> Iterator[LiveCluster]:
    cluster = LiveCluster(tmp).start()
    try:
        yield cluster
    finally:
        cluster.stop()
