"""The emulator's WSGI dispatch: each EC2 request is parsed, passes the model's gate
(throttling, then faults), is answered by the model over moto, timed, written to the call
log with the replica that sent it (its User-Agent) and sent (or, on a timeout fault, held
and dropped). ``/_steadyscale/`` paths go to the control API; SQS and EventBridge requests
(told apart by the service their signature names) to moto's backends of the same account.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

from steadyscale.ec2model.calllog import CallLog, CallRecord, replica_of
from steadyscale.ec2model.events import EmittedEvent
from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.settings import EmulatorSettings
from steadyscale.emulator.control import CONTROL_PREFIX, Control, WsgiStartResponse
from steadyscale.emulator.ec2 import Ec2Call, MotoEC2, RegionRecords
from steadyscale.emulator.messaging import MotoMessaging, service_of
from steadyscale.emulator.messaging.bus import route
from steadyscale.emulator.messaging.pump import Pump
from steadyscale.emulator.outcome import Outcome, ec2_error, refused
from steadyscale.retries.clock import Clock

_PHRASES = {200: "OK", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


class EmulatorApp:
    """The WSGI application. Model and moto are touched under ``MotoEC2``'s lock only;
    a timeout fault sleeps outside it, so other calls go on."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.calls = CallLog()
        self.ec2 = MotoEC2(settings, clock)
        self.messaging = MotoMessaging(self.ec2.account_id, self.ec2.lock, settings.time_scale)
        self.ec2.deliver = self._route
        self._pump = Pump(self.pump)
        self.control = Control(self.ec2, self.calls)

    @property
    def account_id(self) -> str:
        """The account moto keeps this emulator's backends under."""
        return self.ec2.account_id

    def _route(self, region: str, events: list[EmittedEvent]) -> None:
        route(self.account_id, region, events)

    def pump(self) -> None:
        """Move every region's timeline to now: its due events go to the bus."""
        for name in self.ec2.region_names():
            with self.ec2.region_now(name):
                pass

    def close(self) -> None:
        """Stop delivering events; drop moto's backends of this emulator's account."""
        self._pump.stop()
        self.ec2.close()
        self.messaging.close()

    def __call__(self, environ: dict[str, Any], start_response: WsgiStartResponse) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path.startswith(CONTROL_PREFIX):
            return self.control.serve(environ, start_response)
        service = service_of(environ)
        if service is not None:
            # What fell due by now reaches the queues before the caller looks at them.
            self.pump()
            self._pump.start()
            return _send(start_response, self.messaging.answer(service, environ))
        started = time.perf_counter()
        sender = _Sender(replica_of(environ.get("HTTP_USER_AGENT")), self.clock.now())
        call = self.ec2.parse(environ)
        if call is None:
            outcome = ec2_error(400, "InvalidRequest", "The request could not be parsed.")
            return _send(start_response, outcome)
        with self.ec2.region_now(call.region) as (records, now):
            outcome = self._gated(call, records, now)
        if outcome.fault is Fault.TIMEOUT:
            self.clock.sleep(self.settings.errors.timeout_seconds)
            self._record(call, outcome, started, sender, status=0)
            _drop_connection(environ)
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return []
        self._record(call, outcome, started, sender, status=outcome.status)
        return _send(start_response, outcome)

    def _gated(self, call: Ec2Call, records: RegionRecords, now: float) -> Outcome:
        """The call's answer as the gate lets it through: refused before anything is done
        (throttled, a server error), or done and then perhaps hidden (lost, timed out)."""
        draw = records.model.gate.draw(call.action, now, call.resources)
        if draw.refusal is not None:
            return refused(draw.refusal)
        outcome = self.ec2.answer(call, records, now)
        hidden = draw.hidden()
        if hidden is not None:
            return refused(hidden, instances=outcome.instances)
        return outcome

    def _record(
        self, call: Ec2Call, outcome: Outcome, started: float, sender: _Sender, *, status: int
    ) -> None:
        self.calls.add(
            CallRecord(
                at=self.clock.now(),
                region=call.region,
                action=call.action or "(none)",
                outcome=outcome.outcome,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                fault=outcome.fault.value if outcome.fault else None,
                instances=outcome.instances,
                parameters=call.parameter_names(),
                tagged_resource_types=call.tagged_resource_types(),
                replica=sender.replica,
                received_at=sender.received_at,
            )
        )


@dataclass(frozen=True)
class _Sender:
    """Who sent a request and when it came in."""

    replica: str | None
    received_at: float


def _drop_connection(environ: dict[str, Any]) -> None:
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _send(start_response: WsgiStartResponse, outcome: Outcome) -> list[bytes]:
    body = outcome.body.encode("utf-8")
    headers = {k: v for k, v in outcome.headers.items() if k.lower() != "status"}
    headers.setdefault("Content-Type", "text/xml")
    headers["Content-Length"] = str(len(body))
    phrase = _PHRASES.get(outcome.status, "Status")
    start_response(f"{outcome.status} {phrase}", list(headers.items()))
    return [body]
