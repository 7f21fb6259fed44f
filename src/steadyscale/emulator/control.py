"""The emulator's control surface: ground truth, the call log, the settings, fault
injection, spot interruption and node health. ``Emulator`` offers it to Python; ``serve``
offers it over HTTP as JSON under ``/_steadyscale/`` (loopback only, like the endpoint).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from steadyscale.ec2model.calllog import CallLog
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import TrackedInstance
from steadyscale.emulator.ec2 import MotoEC2

CONTROL_PREFIX = "/_steadyscale/"
WsgiStartResponse = Callable[..., Any]
_TRUE = ("1", "true", "yes")


class Control:
    """What tests and operators may see and do beyond EC2's own API."""

    def __init__(self, ec2: MotoEC2, calls: CallLog) -> None:
        self.ec2 = ec2
        self.calls = calls

    def truth(self, region: str, *, include_gone: bool = False) -> list[TrackedInstance]:
        """Every instance as it really is, untouched by any fault (copies)."""
        with self.ec2.region_now(region) as (records, _):
            return [copy.copy(i) for i in records.model.truth(include_gone=include_gone)]

    def interrupt(self, region: str, instance_ids: list[str]) -> list[str]:
        """Interrupt instances now, as EC2 reclaims spot capacity; returns those hit."""
        with self.ec2.region_now(region) as (records, now):
            changes = [c for i in instance_ids if (c := records.model.interrupt(i, now))]
            records.mirror(changes)
            return [c.instance_id for c in changes]

    def inject(self, region: str, fault: Fault, action: str = "*", count: int = 1) -> None:
        with self.ec2.region_now(region) as (records, _):
            records.model.gate.inject(fault, action, count)

    def node_health(self, region: str, instance_id: str) -> bool:
        """What a health probe of the instance finds (``RegionModel.probe``)."""
        with self.ec2.region_now(region) as (records, _):
            return records.model.probe(instance_id)

    def set_node_health(self, region: str, instance_ids: list[str], healthy: bool | None) -> None:
        with self.ec2.region_now(region) as (records, _):
            records.model.set_node_health(instance_ids, healthy)

    # ------------------------------------------------------------ over HTTP

    def serve(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> list[bytes]:
        request = Request(environ)
        path = request.path[len(CONTROL_PREFIX) :].strip("/")
        route = _ROUTES.get((path, request.method))
        if route is None:
            return _json(start_response, 404, {"error": f"no control path {path!r}"})
        try:
            payload = route(self, request, request.args.get("region", "us-east-1"))
        except (ValueError, KeyError, TypeError) as exc:
            return _json(start_response, 400, {"error": f"bad request: {exc}"})
        return _json(start_response, 200, payload)

    def _health(self, request: Request, region: str) -> Any:
        settings = self.ec2.settings
        return {"ok": True, "profile": settings.profile, "now": self.ec2.clock.now()}

    def _truth(self, request: Request, region: str) -> Any:
        include_gone = request.args.get("include_gone", "0") in _TRUE
        return {
            "region": region,
            "now": self.ec2.clock.now(),
            "instances": [i.to_json() for i in self.truth(region, include_gone=include_gone)],
        }

    def _calls(self, request: Request, region: str) -> Any:
        return self.calls.to_json(limit=int(request.args.get("limit", "1000")))

    def _settings(self, request: Request, region: str) -> Any:
        return self.ec2.settings.model_dump(mode="json")

    def _interrupt(self, request: Request, region: str) -> Any:
        body = _body(request)
        ids = body.get("instance_ids", [])
        return {"interrupted": self.interrupt(body.get("region", region), ids)}

    def _get_node_health(self, request: Request, region: str) -> Any:
        instance_id = request.args["instance_id"]
        return {"instance_id": instance_id, "healthy": self.node_health(region, instance_id)}

    def _set_node_health(self, request: Request, region: str) -> Any:
        body = _body(request)
        healthy = body["healthy"]
        if healthy is not None and not isinstance(healthy, bool):
            raise ValueError("healthy must be true, false or null")
        ids = [str(i) for i in body["instance_ids"]]
        self.set_node_health(body.get("region", region), ids, healthy)
        return {"instance_ids": ids, "healthy": healthy}

    def _faults(self, request: Request, region: str) -> Any:
        body = _body(request)
        self.inject(
            body.get("region", region),
            Fault(body["fault"]),
            body.get("action", "*"),
            int(body.get("count", 1)),
        )
        return {"injected": body}


_ROUTES: dict[tuple[str, str], Callable[[Control, Request, str], Any]] = {
    ("health", "GET"): Control._health,
    ("truth", "GET"): Control._truth,
    ("calls", "GET"): Control._calls,
    ("settings", "GET"): Control._settings,
    ("interrupt", "POST"): Control._interrupt,
    ("node-health", "GET"): Control._get_node_health,
    ("node-health", "POST"): Control._set_node_health,
    ("faults", "POST"): Control._faults,
}


def _body(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(request.get_data(as_text=True) or "{}")
    return body


def _json(start_response: WsgiStartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode("utf-8")
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
