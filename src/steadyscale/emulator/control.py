"""The emulator's control surface: ground truth, the call log, the settings, fault
injection, spot interruption, node health, and the drain calls a workload would receive.
``Emulator`` offers it to Python; ``serve`` offers it over HTTP as JSON under
``/_steadyscale/`` (loopback only, like the endpoint).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request

from steadyscale.ec2model.calllog import CallLog
from steadyscale.ec2model.fleet import pools_truth
from steadyscale.ec2model.gate import Fault, check_injection
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
        self._drains: list[dict[str, Any]] = []
        self._drains_lock = threading.Lock()

    def drain(self, region: str, instance_id: str) -> dict[str, Any]:
        """Record that the workload on an instance was asked to drain (an emulated
        instance's drain hook target): ground truth of which, when, and in what state."""
        with self.ec2.region_now(region) as (records, now):
            truth = records.model.truth(include_gone=True)
            found = [i.state.value for i in truth if i.instance_id == instance_id]
        state = found[0] if found else None
        call = {"instance_id": instance_id, "region": region, "at": now, "state": state}
        with self._drains_lock:
            self._drains.append(call)
        return call

    def drains(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """The drain calls received, oldest first (those for one instance, if given)."""
        with self._drains_lock:
            return [dict(c) for c in self._drains if instance_id in (None, c["instance_id"])]

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
        """Make the next ``count`` calls of ``action`` (or any, with ``*``) hit ``fault``;
        ValueError for an action EC2 does not have or a count out of bounds."""
        check_injection(action, count)  # before the lock: the first check loads EC2's model
        with self.ec2.region_now(region) as (records, _):
            records.model.gate.inject(fault, action, count)

    def node_health(self, region: str, instance_id: str) -> bool:
        """What a health probe of the instance finds (``RegionModel.probe``)."""
        with self.ec2.region_now(region) as (records, _):
            return records.model.probe(instance_id)

    def set_node_health(self, region: str, instance_ids: list[str], healthy: bool | None) -> None:
        with self.ec2.region_now(region) as (records, _):
            records.model.set_node_health(instance_ids, healthy)

    def pools(self, region: str, instance_types: list[str]) -> list[dict[str, object]]:
        """The pools of these types: price now, room left, out of capacity or not."""
        with self.ec2.region_now(region) as (records, now):
            return pools_truth(records.model, instance_types, now)

    # ------------------------------------------------------------ over HTTP

    def serve(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> list[bytes]:
        request = Request(environ)
        path = request.path[len(CONTROL_PREFIX) :].strip("/")
        route = _ROUTES.get((path, request.method))
        if path.startswith("drain/") and request.method in ("POST", "GET"):
            route = Control._drain if request.method == "POST" else Control._drain_calls
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

    def _pools(self, request: Request, region: str) -> Any:
        types = [t for t in request.args.get("instance_types", "").split(",") if t]
        if not types:
            raise ControlRequestError("instance_types: give a comma-separated list of types")
        return {"region": region, "now": self.ec2.clock.now(), "pools": self.pools(region, types)}

    def _calls(self, request: Request, region: str) -> Any:
        return self.calls.to_json(
            limit=int(request.args.get("limit", "1000")),
            mutations_only=request.args.get("mutations", "0") in _TRUE,
        )

    def _settings(self, request: Request, region: str) -> Any:
        return self.ec2.settings.model_dump(mode="json")

    def _interrupt(self, request: Request, region: str) -> Any:
        body = _body(request, ("instance_ids", "region"))
        ids = _instance_ids(body)
        return {"interrupted": self.interrupt(_region(body, region), ids)}

    def _get_node_health(self, request: Request, region: str) -> Any:
        instance_id = request.args["instance_id"]
        return {"instance_id": instance_id, "healthy": self.node_health(region, instance_id)}

    def _set_node_health(self, request: Request, region: str) -> Any:
        body = _body(request, ("instance_ids", "healthy", "region"))
        healthy = _field(body, "healthy", "true, false or null")
        if healthy is not None and not isinstance(healthy, bool):
            raise ControlRequestError(f"healthy: give true, false or null, got {_kind(healthy)}")
        ids = _instance_ids(body)
        self.set_node_health(_region(body, region), ids, healthy)
        return {"instance_ids": ids, "healthy": healthy}

    def _drain(self, request: Request, region: str) -> Any:
        return self.drain(region, request.path.rstrip("/").rsplit("/", 1)[1])

    def _drain_calls(self, request: Request, region: str) -> Any:
        instance_id = request.path.rstrip("/").rsplit("/", 1)[1]
        return {"drains": self.drains(None if instance_id == "drain" else instance_id)}

    def _faults(self, request: Request, region: str) -> Any:
        body = _body(request, ("fault", "action", "count", "region"))
        name = _field(body, "fault", _FAULTS)
        if not isinstance(name, str) or name not in {f.value for f in Fault}:
            raise ControlRequestError(f"fault: give one of {_FAULTS}, got {_shown(name)}")
        action = body.get("action", "*")
        if not isinstance(action, str):
            raise ControlRequestError(f"action: give an EC2 action name or *, got {_kind(action)}")
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise ControlRequestError(f"count: give a whole number of calls, got {_kind(count)}")
        region = _region(body, region)
        self.inject(region, Fault(name), action, count)
        return {"injected": {"fault": name, "action": action, "count": count, "region": region}}


_ROUTES: dict[tuple[str, str], Callable[[Control, Request, str], Any]] = {
    ("health", "GET"): Control._health,
    ("truth", "GET"): Control._truth,
    ("pools", "GET"): Control._pools,
    ("calls", "GET"): Control._calls,
    ("settings", "GET"): Control._settings,
    ("interrupt", "POST"): Control._interrupt,
    ("node-health", "GET"): Control._get_node_health,
    ("node-health", "POST"): Control._set_node_health,
    ("faults", "POST"): Control._faults,
    ("drain", "GET"): Control._drain_calls,
}


_FAULTS = ", ".join(Fault)


class ControlRequestError(ValueError):
    """A control request refused with a 400 whose message names the field at fault."""


def _body(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object a POST carries, holding only the fields its path takes."""
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except json.JSONDecodeError as exc:
        raise ControlRequestError(f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ControlRequestError(
            f"the body must be a JSON object with {', '.join(fields)}, got {_kind(body)}"
        )
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise ControlRequestError(
            f"unknown field {_shown(unknown[0])}; this path takes {', '.join(fields)}"
        )
    return body


def _field(body: dict[str, Any], name: str, expected: str) -> Any:
    if name not in body:
        raise ControlRequestError(f"{name}: required ({expected})")
    return body[name]


def _instance_ids(body: dict[str, Any]) -> list[str]:
    """``instance_ids`` as a list of strings: a lone string is not read as its characters."""
    ids = _field(body, "instance_ids", 'a list of instance ids, e.g. ["i-0123456789abcdef0"]')
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ControlRequestError(
            'instance_ids: give a list of instance ids, e.g. ["i-0123456789abcdef0"], '
            f"got {_kind(ids)}"
        )
    return ids


def _region(body: dict[str, Any], default: str) -> str:
    region = body.get("region", default)
    if not isinstance(region, str) or not region:
        raise ControlRequestError(
            f"region: give a region name such as us-east-1, got {_kind(region)}"
        )
    return region


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: its type, and the value when it is short."""
    if isinstance(value, list) and not all(isinstance(i, str) for i in value):
        return "a list holding something other than strings"
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    kind = "null" if value is None else kinds.get(type(value), "a number")
    return kind if value is None or isinstance(value, dict | list) else f"{kind} {_shown(value)}"


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _json(start_response: WsgiStartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode("utf-8")
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
