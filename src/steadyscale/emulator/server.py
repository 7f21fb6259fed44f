"""The EC2 endpoint: moto's EC2 behind the consistency-and-fault model, served over HTTP.

Each request is parsed by moto, checked against throttling and injected faults, and then
either answered by moto unchanged or, for the instance actions where EC2 is eventually
consistent (RunInstances, DescribeInstances, CreateTags, TerminateInstances, ...), answered
from moto's data as filtered by the model. ``/_steadyscale/...`` paths serve the ground
truth, the call log and fault injection as JSON. Only loopback is used unless asked.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from moto.core.exceptions import ServiceException
from moto.core.request import Request as MotoRequest
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, InvalidInstanceIdError, OperationNotPermitted4
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import StateReason
from moto.ec2.responses import EC2Response
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from steadyscale.ec2model.calllog import CallLog, CallRecord
from steadyscale.ec2model.gate import Fault, Refusal
from steadyscale.ec2model.instances import STATE_CODES, InstanceState, StateChange, TrackedInstance
from steadyscale.ec2model.launch import ClientTokens, Launch, LaunchRefusedError, fingerprint
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import EmulatorSettings, Operation
from steadyscale.errors import EmulatorStartError
from steadyscale.providers.wire import instance_tags, market_of
from steadyscale.retries.clock import Clock, ScaledClock

log = logging.getLogger("steadyscale.emulator")

CONTROL_PREFIX = "/_steadyscale/"
WsgiStartResponse = Callable[..., Any]
Response = tuple[int, dict[str, str], str]

# Filters that read the tag index rather than the instance itself (fault F3).
_TAG_FILTER_PREFIX = "tag:"


class _Request(MotoRequest):
    from_wsgi_server = True


@dataclass
class _Outcome:
    status: int
    headers: dict[str, str]
    body: str
    outcome: str = "ok"
    fault: Fault | None = None
    instances: int = 0


def _ec2_error(status: int, code: str, message: str) -> _Outcome:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return _Outcome(status, {"Content-Type": "text/xml"}, body, outcome=code)


class _ClientError(EC2ClientError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


@dataclass
class _RegionState:
    """What the adapter keeps per region besides the model."""

    model: RegionModel
    instances: dict[str, Any] = field(default_factory=dict)  # id -> moto Instance
    reservation_of: dict[str, str] = field(default_factory=dict)  # id -> reservation id
    # The reservation first answered under each ClientToken.
    tokens: ClientTokens[Any] = field(default_factory=ClientTokens)


def _refused(refusal: Refusal, instances: int = 0) -> _Outcome:
    """The answer the model's gate gave instead of the call's own."""
    outcome = _ec2_error(refusal.status, refusal.code, refusal.message)
    outcome.fault = refusal.fault
    outcome.instances = instances
    return outcome


def _tag_filter_keys(filters: dict[str, Any]) -> list[str] | bool | None:
    """Keys whose index a filter needs: a list, None for "any key", or False for none."""
    keys: list[str] = []
    for name, values in filters.items():
        if name.startswith(_TAG_FILTER_PREFIX):
            keys.append(name[len(_TAG_FILTER_PREFIX) :])
        elif name == "tag-key":
            keys.extend(values if isinstance(values, list) else [values])
        elif name == "tag-value":
            return None
    return keys if keys else False


class EmulatorApp:
    """The WSGI application. One lock serialises model and moto access; faults sleep outside."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.calls = CallLog()
        # moto keeps its backends per account id; a fresh id isolates this emulator.
        self.account_id = f"{random.SystemRandom().randrange(10**11, 10**12):012d}"
        self._lock = threading.RLock()
        self._regions: dict[str, _RegionState] = {}
        self._handlers: dict[str, Callable[[EC2Response, _RegionState, float], _Outcome]] = {
            "RunInstances": self._run_instances,
            "DescribeInstances": self._describe_instances,
            "TerminateInstances": self._terminate_instances,
            "CreateTags": self._create_tags,
            "DeleteTags": self._delete_tags,
            "StopInstances": self._stop_start,
            "StartInstances": self._stop_start,
            "RebootInstances": self._stop_start,
            "DescribeInstanceStatus": self._describe_instance_status,
        }

    # ------------------------------------------------------------ regions and time

    def region(self, name: str) -> _RegionState:
        with self._lock:
            state = self._regions.get(name)
            if state is None:
                state = _RegionState(RegionModel(self.settings, name, start=self.clock.now()))
                self._regions[name] = state
            return state

    def _backend(self, region: str) -> Any:
        return ec2_backends[self.account_id][region]

    def advance(self, region: str, now: float | None = None) -> None:
        """Apply the model's due transitions to moto's records."""
        with self._lock:
            state = self.region(region)
            moment = self.clock.now() if now is None else now
            self._mirror(region, state, state.model.advance(moment))

    def _mirror(self, region: str, state: _RegionState, changes: Iterable[StateChange]) -> None:
        for change in changes:
            inst = state.instances.get(change.instance_id)
            if inst is None:
                continue
            if change.new_state is None:
                self._forget(region, state, change.instance_id)
            elif change.new_state is InstanceState.TERMINATED:
                inst.terminate()
                tracked = state.model.instances.get(change.instance_id)
                if tracked is not None and tracked.interrupted:
                    inst.state_reason = StateReason(
                        "Server.SpotInstanceTermination: Spot instance termination",
                        "Server.SpotInstanceTermination",
                    )
            else:
                inst._state.name = change.new_state.value
                inst._state.code = STATE_CODES[change.new_state]

    def _forget(self, region: str, state: _RegionState, instance_id: str) -> None:
        inst = state.instances.pop(instance_id)
        reservation_id = state.reservation_of.pop(instance_id, None)
        reservations = self._backend(region).reservations
        reservation = reservations.get(reservation_id)
        if reservation is not None:
            reservation.instances = [i for i in reservation.instances if i is not inst]
            if not reservation.instances:
                del reservations[reservation_id]

    # ------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        started = time.perf_counter()
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        request = _Request(environ)
        response = EC2Response()
        try:
            response.setup_class(request)
            action = response._get_action() or ""
        except Exception as exc:  # an unparseable request: answer like EC2 would
            log.debug("unparseable request: %s", exc)
            outcome = _ec2_error(400, "InvalidRequest", "The request could not be parsed.")
            return self._send(start_response, outcome)
        region = response.region
        with self._lock:
            now = self.clock.now()
            state = self.region(region)
            self._mirror(region, state, state.model.advance(now))
            outcome = self._handle(action, response, state, now)
        if outcome.fault is Fault.TIMEOUT:
            self.clock.sleep(self.settings.errors.timeout_seconds)
            self._record(region, action, outcome, started, status=0, response=response)
            self._drop_connection(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        self._record(region, action, outcome, started, status=outcome.status, response=response)
        return self._send(start_response, outcome)

    def _record(
        self,
        region: str,
        action: str,
        outcome: _Outcome,
        started: float,
        *,
        status: int,
        response: EC2Response,
    ) -> None:
        query: dict[str, Any] = getattr(response, "querystring", None) or {}
        names = sorted({key.split(".", 1)[0] for key in query} - {"Action", "Version"})
        tagged = sorted(
            {
                str(values[0])
                for key, values in query.items()
                if key.startswith("TagSpecification.") and key.endswith(".ResourceType") and values
            }
        )
        self.calls.add(
            CallRecord(
                at=self.clock.now(),
                region=region,
                action=action or "(none)",
                outcome="timeout" if outcome.fault is Fault.TIMEOUT else outcome.outcome,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                fault=outcome.fault.value if outcome.fault else None,
                instances=outcome.instances,
                parameters=tuple(names),
                tagged_resource_types=tuple(tagged),
            )
        )

    @staticmethod
    def _drop_connection(environ: dict[str, Any]) -> None:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _send(start_response: WsgiStartResponse, outcome: _Outcome) -> list[bytes]:
        body = outcome.body.encode("utf-8")
        headers = {k: v for k, v in outcome.headers.items() if k.lower() != "status"}
        headers.setdefault("Content-Type", "text/xml")
        headers["Content-Length"] = str(len(body))
        phrase = {
            200: "OK",
            400: "Bad Request",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }.get(outcome.status, "Status")
        start_response(f"{outcome.status} {phrase}", list(headers.items()))
        return [body]

    # ------------------------------------------------------------ dispatch

    def _handle(
        self, action: str, response: EC2Response, state: _RegionState, now: float
    ) -> _Outcome:
        draw = state.model.gate.draw(action, now, self._resource_count(action, response))
        if draw.refusal is not None:
            return _refused(draw.refusal)
        try:
            handler = self._handlers.get(action)
            if handler is not None:
                outcome = handler(response, state, now)
            else:
                status, headers, body = response.call_action()
                outcome = _Outcome(int(status), dict(headers), str(body))
                if outcome.status >= 400:
                    outcome.outcome = _error_code(outcome.body)
        except ServiceException as exc:
            outcome = self._serialize_error(response, exc)
        except NotImplementedError:
            outcome = _ec2_error(
                400, "InvalidAction", f"The action {action} is not valid for this web service."
            )
        except Exception:
            log.exception("emulator failed on %s", action)
            outcome = _ec2_error(500, "InternalError", "An internal error has occurred.")
        hidden = draw.hidden()
        if hidden is not None:
            return _refused(hidden, outcome.instances)
        return outcome

    @staticmethod
    def _resource_count(action: str, response: EC2Response) -> int:
        # RunInstances' instance bucket is charged by what it launches (see _run_instances).
        if action == "TerminateInstances":
            return len(response._get_param("InstanceIds", []) or [])
        return 0

    @staticmethod
    def _ok(response: EC2Response, result: ActionResult) -> _Outcome:
        status, headers, body = response.serialized(result)
        headers, body = response._enrich_response(headers, body)
        return _Outcome(int(status), dict(headers), str(body))

    @staticmethod
    def _serialize_error(response: EC2Response, exc: ServiceException) -> _Outcome:
        status, headers, body = response.serialized(ActionResult(exc))
        return _Outcome(int(status), dict(headers), str(body), outcome=exc.code)

    def _lookup(self, region: str, state: _RegionState, instance_id: str) -> Any | None:
        inst = state.instances.get(instance_id)
        if inst is None and instance_id not in state.model.gone:
            inst = self._backend(region).get_instance_by_id(instance_id)
        return inst

    def _require_visible(
        self,
        region: str,
        state: _RegionState,
        instance_ids: list[str],
        operation: Operation,
        now: float,
    ) -> list[Any]:
        missing = [
            i
            for i in instance_ids
            if not state.model.visibility.is_visible(i, operation, now)
            or self._lookup(region, state, i) is None
        ]
        if missing:
            raise InvalidInstanceIdError(missing)
        return [self._lookup(region, state, i) for i in instance_ids]

    # ------------------------------------------------------------ RunInstances

    def _run_instances(self, response: EC2Response, state: _RegionState, now: float) -> _Outcome:
        region = response.region
        backend = self._backend(region)
        try:
            min_count = int(response._get_param("MinCount", 1))
            max_count = int(response._get_param("MaxCount", min_count))
        except (TypeError, ValueError):
            raise _ClientError(
                "InvalidParameterValue", "MinCount and MaxCount must be integers"
            ) from None
        if min_count < 1 or max_count < min_count:
            raise _ClientError(
                "InvalidParameterValue",
                f"MinCount ({min_count}) must be >= 1 and <= MaxCount ({max_count})",
            )
        params = response.params
        token = response._get_param("ClientToken")
        params_fingerprint = fingerprint(params)
        try:
            previous = state.tokens.replay(token, params_fingerprint)
            if previous is not None:
                return self._ok(response, ActionResult(previous))
            launch = Launch(
                instance_type=response._get_param("InstanceType") or "m1.small",
                availability_zone=self._launch_zone(response, backend),
                market=market_of(params),
                min_count=min_count,
                max_count=max_count,
                client_token=token,
                tags=instance_tags(params),
            )
            count = state.model.admit_launch(launch, now)
        except LaunchRefusedError as refused:
            if refused.status != 400:  # the launch bucket: a throttle, not a client error
                return _ec2_error(refused.status, refused.code, refused.message)
            raise _ClientError(refused.code, refused.message) from None
        response.params["MinCount"] = count
        result = response.run_instances()
        reservation: Any = result.result
        ids: list[str] = []
        launched = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
        # moto ignores DisableApiTermination at launch; EC2 honours it.
        protect = bool(response._get_param("DisableApiTermination"))
        for inst in reservation.instances:
            if protect:
                inst.disable_api_termination = True
            ids.append(inst.id)
            inst.launch_time = launched  # on the emulator's clock, so time scale applies
            state.instances[inst.id] = inst
            state.reservation_of[inst.id] = reservation.id
            inst._state.name = InstanceState.PENDING.value
            inst._state.code = STATE_CODES[InstanceState.PENDING]
        if reservation.instances:  # moto placed them
            launch = dataclasses.replace(
                launch, availability_zone=reservation.instances[0].placement.zone
            )
        state.model.register_launch(launch, ids, now)
        for inst in reservation.instances:  # moto chose the addresses here
            state.model.instances[inst.id].private_ip = str(inst.private_ip)
        if token:
            # EC2 answers a repeated token with the original response, so keep a snapshot.
            snapshot = copy.copy(reservation)
            snapshot.instances = [_pending_view(i) for i in reservation.instances]
            state.tokens.remember(token, params_fingerprint, snapshot)
        self._mirror(region, state, state.model.advance(now))
        outcome = self._ok(response, result)
        outcome.instances = len(ids)
        return outcome

    @staticmethod
    def _launch_zone(response: EC2Response, backend: Any) -> str:
        subnet_id = response._get_param("SubnetId") or response._get_param(
            "NetworkInterface.1.SubnetId"
        )
        if not subnet_id:
            nics = response._get_param("NetworkInterfaces", []) or []
            if nics and isinstance(nics[0], dict):
                subnet_id = nics[0].get("SubnetId")
        if subnet_id:
            try:
                return str(backend.get_subnet(subnet_id).availability_zone)
            except ServiceException:
                pass  # moto reports the bad subnet when it launches
        placement = response._get_param("Placement.AvailabilityZone")
        return str(placement or f"{response.region}a")

    # ------------------------------------------------------------ DescribeInstances

    def _describe_instances(
        self, response: EC2Response, state: _RegionState, now: float
    ) -> _Outcome:
        region = response.region
        backend = self._backend(region)
        model = state.model
        visibility = model.visibility
        filters = response._filters_from_querystring()
        instance_ids: list[str] = response._get_param("InstanceIds", []) or []
        max_results_raw = response._get_param("MaxResults")
        token = response._get_param("NextToken")
        if instance_ids and max_results_raw is not None:
            raise _ClientError(
                "InvalidParameterCombination",
                "The parameter instancesSet cannot be used with the parameter maxResults",
            )
        max_results: int | None = None
        if max_results_raw is not None:
            try:
                max_results = int(max_results_raw)
            except (TypeError, ValueError):
                max_results = -1
            if not 5 <= max_results <= 1000:
                raise _ClientError(
                    "InvalidParameterValue",
                    f"Value ({max_results_raw}) for parameter maxResults is invalid. "
                    "Expecting a value between 5 and 1000.",
                )
        if instance_ids:
            self._require_visible(region, state, instance_ids, Operation.DESCRIBE_BY_ID, now)
            reservations = backend.get_reservations_by_instance_ids(
                instance_ids, filters=filters or None
            )
            operation = Operation.DESCRIBE_BY_ID
        else:
            reservations = backend.all_reservations(filters or None)
            operation = Operation.LISTING
        tag_keys = _tag_filter_keys(filters)
        visible: list[tuple[Any, Any]] = []  # (reservation, instance view)
        for reservation in reservations:
            for inst in reservation.instances:
                iid = inst.id
                if not model.tracks(iid):
                    visible.append((reservation, inst))
                    continue
                if not visibility.is_visible(iid, operation, now):
                    continue
                if tag_keys is not False and not visibility.tags_indexed(
                    iid, tag_keys if isinstance(tag_keys, list) else None, now
                ):
                    continue
                if operation is Operation.LISTING and visibility.flickers(iid):
                    continue
                seen = visibility.observed_state(iid, now)
                if seen is not None and seen.value != inst._state.name:
                    visible.append((reservation, _state_view(inst, seen)))
                else:
                    visible.append((reservation, inst))
        start = 0
        if token:
            start = _decode_token(token, [inst.id for _, inst in visible])
        end = len(visible) if max_results is None else start + max_results
        page = visible[start:end]
        next_token = _encode_token(end, page[-1][1].id) if end < len(visible) and page else None
        grouped: dict[str, Any] = {}
        for reservation, inst in page:
            view = grouped.get(reservation.id)
            if view is None:
                view = copy.copy(reservation)
                view.instances = []
                grouped[reservation.id] = view
            view.instances.append(inst)
        result: dict[str, Any] = {"Reservations": list(grouped.values())}
        if next_token:
            result["NextToken"] = next_token
        return self._ok(response, ActionResult(result))

    def _describe_instance_status(
        self, response: EC2Response, state: _RegionState, now: float
    ) -> _Outcome:
        region = response.region
        instance_ids: list[str] = response._get_param("InstanceIds", []) or []
        if instance_ids:
            self._require_visible(region, state, instance_ids, Operation.DESCRIBE_BY_ID, now)
        result = response.describe_instance_status()
        found: Any = result.result
        operation = Operation.DESCRIBE_BY_ID if instance_ids else Operation.LISTING
        statuses = [
            inst
            for inst in found["InstanceStatuses"]
            if state.model.visibility.is_visible(inst.id, operation, now)
        ]
        return self._ok(response, ActionResult({"InstanceStatuses": statuses}))

    # ------------------------------------------------------------ tags

    def _tagged_instance_ids(self, response: EC2Response) -> tuple[list[str], list[str]]:
        resources: list[str] = response._get_param("Resources", []) or []
        return resources, [r for r in resources if r.startswith("i-")]

    def _create_tags(self, response: EC2Response, state: _RegionState, now: float) -> _Outcome:
        region = response.region
        resources, instance_ids = self._tagged_instance_ids(response)
        self._require_visible(region, state, instance_ids, Operation.CREATE_TAGS, now)
        tags = {t["Key"]: t.get("Value", "") for t in response._get_param("Tags", []) or []}
        others = [r for r in resources if not r.startswith("i-")]
        if others:
            self._backend(region).do_resources_exist(others)
        response.error_on_dryrun()
        self._backend(region).create_tags(resources, tags)
        for iid in instance_ids:
            state.model.record_tags(iid, tags, now)
        return self._ok(response, ActionResult(None))

    def _delete_tags(self, response: EC2Response, state: _RegionState, now: float) -> _Outcome:
        region = response.region
        _, instance_ids = self._tagged_instance_ids(response)
        self._require_visible(region, state, instance_ids, Operation.CREATE_TAGS, now)
        result = response.delete_tags()
        keys = [t["Key"] for t in response._get_param("Tags", []) or []]
        for iid in instance_ids:
            state.model.remove_tags(iid, keys)
        return self._ok(response, result)

    # ------------------------------------------------------------ state changes

    def _terminate_instances(
        self, response: EC2Response, state: _RegionState, now: float
    ) -> _Outcome:
        region = response.region
        instance_ids: list[str] = response._get_param("InstanceIds", []) or []
        if not instance_ids:
            raise _ClientError(
                "MissingParameter", "The request must contain the parameter InstanceId"
            )
        instances = self._require_visible(region, state, instance_ids, Operation.TERMINATE, now)
        response.error_on_dryrun()
        for inst in instances:
            if getattr(inst, "disable_api_termination", False) is True:
                raise OperationNotPermitted4(inst.id)  # the whole call fails, as on EC2
        items = []
        changes: list[StateChange] = []
        for iid, inst in zip(instance_ids, instances, strict=True):
            if state.model.tracks(iid):
                previous, current, change = state.model.request_terminate(iid, now)
                if change is not None:
                    changes.append(change)
            else:
                previous = InstanceState(inst._state.name)
                if previous is not InstanceState.TERMINATED:
                    inst.terminate()
                current = InstanceState.TERMINATED
            items.append(
                {
                    "InstanceId": iid,
                    "CurrentState": {"Code": STATE_CODES[current], "Name": current.value},
                    "PreviousState": {"Code": STATE_CODES[previous], "Name": previous.value},
                }
            )
        self._mirror(region, state, changes)
        self._mirror(region, state, state.model.advance(now))
        outcome = self._ok(response, ActionResult({"TerminatingInstances": items}))
        outcome.instances = len(changes)
        return outcome

    def _stop_start(self, response: EC2Response, state: _RegionState, now: float) -> _Outcome:
        region = response.region
        action = response._get_action()
        instance_ids: list[str] = response._get_param("InstanceIds", []) or []
        self._require_visible(region, state, instance_ids, Operation.TERMINATE, now)
        method = {
            "StopInstances": response.stop_instances,
            "StartInstances": response.start_instances,
            "RebootInstances": response.reboot_instances,
        }[action]
        result = method()
        for iid in instance_ids:
            inst = state.instances.get(iid)
            if inst is not None:
                state.model.record_state(iid, InstanceState(inst._state.name), now, action)
        return self._ok(response, result)

    # ------------------------------------------------------------ control API

    def truth(self, region: str, *, include_gone: bool = False) -> list[TrackedInstance]:
        with self._lock:
            self.advance(region)
            return [
                copy.copy(i) for i in self.region(region).model.truth(include_gone=include_gone)
            ]

    def interrupt(self, region: str, instance_ids: list[str]) -> list[str]:
        with self._lock:
            now = self.clock.now()
            state = self.region(region)
            self._mirror(region, state, state.model.advance(now))
            changes = [c for i in instance_ids if (c := state.model.interrupt(i, now))]
            self._mirror(region, state, changes)
            return [c.instance_id for c in changes]

    def inject(self, region: str, fault: Fault, action: str = "*", count: int = 1) -> None:
        with self._lock:
            self.region(region).model.gate.inject(fault, action, count)

    def node_health(self, region: str, instance_id: str) -> bool:
        """What a health probe of the instance finds (``RegionModel.probe``)."""
        with self._lock:
            self.advance(region)
            return self.region(region).model.probe(instance_id)

    def set_node_health(self, region: str, instance_ids: list[str], healthy: bool | None) -> None:
        with self._lock:
            self.region(region).model.set_node_health(instance_ids, healthy)

    def _control(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> Any:
        request = _Request(environ)
        path = request.path[len(CONTROL_PREFIX) :].strip("/")
        region = request.args.get("region", "us-east-1")
        try:
            payload: Any
            if path == "health" and request.method == "GET":
                payload = {"ok": True, "profile": self.settings.profile, "now": self.clock.now()}
            elif path == "truth" and request.method == "GET":
                include_gone = request.args.get("include_gone", "0") in ("1", "true", "yes")
                payload = {
                    "region": region,
                    "now": self.clock.now(),
                    "instances": [
                        i.to_json() for i in self.truth(region, include_gone=include_gone)
                    ],
                }
            elif path == "calls" and request.method == "GET":
                payload = self.calls.to_json(limit=int(request.args.get("limit", "1000")))
            elif path == "settings" and request.method == "GET":
                payload = self.settings.model_dump(mode="json")
            elif path == "interrupt" and request.method == "POST":
                body = json.loads(request.get_data(as_text=True) or "{}")
                ids = body.get("instance_ids", [])
                payload = {"interrupted": self.interrupt(body.get("region", region), ids)}
            elif path == "node-health" and request.method == "GET":
                instance_id = request.args["instance_id"]
                payload = {
                    "instance_id": instance_id,
                    "healthy": self.node_health(region, instance_id),
                }
            elif path == "node-health" and request.method == "POST":
                body = json.loads(request.get_data(as_text=True) or "{}")
                healthy = body["healthy"]
                if healthy is not None and not isinstance(healthy, bool):
                    raise ValueError("healthy must be true, false or null")
                ids = [str(i) for i in body["instance_ids"]]
                self.set_node_health(body.get("region", region), ids, healthy)
                payload = {"instance_ids": ids, "healthy": healthy}
            elif path == "faults" and request.method == "POST":
                body = json.loads(request.get_data(as_text=True) or "{}")
                self.inject(
                    body.get("region", region),
                    Fault(body["fault"]),
                    body.get("action", "*"),
                    int(body.get("count", 1)),
                )
                payload = {"injected": body}
            else:
                return _json(start_response, 404, {"error": f"no control path {path!r}"})
        except (ValueError, KeyError, TypeError) as exc:
            return _json(start_response, 400, {"error": f"bad request: {exc}"})
        return _json(start_response, 200, payload)


def _json(start_response: WsgiStartResponse, status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode("utf-8")
    phrase = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    start_response(
        f"{status} {phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _error_code(body: str) -> str:
    start = body.find("<Code>")
    end = body.find("</Code>", start)
    return body[start + 6 : end] if start >= 0 and end > start else "Error"


def _state_view(inst: Any, seen: InstanceState) -> Any:
    """A shallow copy of a moto instance that shows another state (a stale read)."""
    view = copy.copy(inst)
    view._state = copy.copy(inst._state)
    view._state.name = seen.value
    view._state.code = STATE_CODES[seen]
    return view


def _pending_view(inst: Any) -> Any:
    return _state_view(inst, InstanceState.PENDING)


def _encode_token(offset: int, last_id: str) -> str:
    return f"{offset}.{last_id}"


def _decode_token(token: str, ids: list[str]) -> int:
    """Resume after the last id of the previous page, even if the list shifted."""
    offset_text, _, last_id = token.partition(".")
    try:
        return ids.index(last_id) + 1
    except ValueError:
        pass
    try:
        return max(0, int(offset_text))
    except ValueError:
        raise _ClientError("InvalidParameterValue", f"Invalid NextToken {token!r}") from None


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
        self._thread: threading.Thread | None = None

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
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="steadyscale-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._server = None
        self._thread = None
        ec2_backends.pop(self.app.account_id, None)

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the CLI's mode)."""
        if self._server is None:
            self.start()
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

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
        return self.app.truth(region, include_gone=include_gone)

    @property
    def calls(self) -> CallLog:
        return self.app.calls

    def interrupt(self, instance_ids: list[str], region: str = "us-east-1") -> list[str]:
        """Interrupt instances now, as EC2 reclaims spot capacity."""
        return self.app.interrupt(region, instance_ids)

    def inject(
        self, fault: Fault | str, action: str = "*", count: int = 1, region: str = "us-east-1"
    ) -> None:
        """Make the next ``count`` calls of ``action`` hit ``fault``."""
        self.app.inject(region, Fault(fault), action, count)

    def set_node_health(
        self, instance_ids: list[str], healthy: bool | None, region: str = "us-east-1"
    ) -> None:
        """What node health probes of these instances answer from now on (None: healthy
        exactly while the instance runs, the default)."""
        self.app.set_node_health(region, instance_ids, healthy)
