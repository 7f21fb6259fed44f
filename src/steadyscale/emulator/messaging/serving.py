"""SQS and EventBridge on the emulator's endpoint: a request is told apart from EC2's by
the service its signature names (or its JSON target), and answered by moto's backends of
the emulated account, in the same region the caller signed for.

moto is not thread-safe, so every call runs under the emulator's lock. A long-polling
ReceiveMessage is not left to moto (which would wait in real seconds, holding the lock
and so stalling EC2 and the delivery of the very events it waits for): the emulator
asks moto without a wait, again and again outside the lock, until a message is there or
the wait is over, a wait in emulated seconds like every other delay (scaled by the time
scale).

moto checks each message it returns against its queue's retention period by computing
every attribute of the queue, approximate counts included (three walks over all its
messages, three times): a receive from a queue of n messages cost O(n) per message, under
the emulator's lock, and a burst of a thousand nodes' events stalled EC2's answers for
seconds. Each SQS backend of the account gets the same check reading the retention period
alone (``_retention_check``).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from moto.core.request import Request as MotoRequest
from moto.core.utils import unix_time
from moto.events.models import events_backends
from moto.events.responses import EventsHandler
from moto.sqs.models import sqs_backends
from moto.sqs.responses import SQSResponse

from steadyscale.emulator.outcome import Outcome, ec2_error

log = logging.getLogger("steadyscale.emulator")

MESSAGING_SERVICES = ("sqs", "events")
# The JSON protocol's X-Amz-Target prefixes, for a request whose signature does not say.
_TARGETS = {"AmazonSQS": "sqs", "AWSEvents": "events"}
# Names a signature may give EventBridge.
_ALIASES = {"eventbridge": "events"}


class _Request(MotoRequest):
    from_wsgi_server = True


def service_of(environ: dict[str, Any]) -> str | None:
    """``sqs`` or ``events`` for a request to those services, None for anything else (EC2).

    A SigV4 signature names the service in its credential scope
    (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``); an unsigned JSON request names
    it in ``X-Amz-Target``."""
    auth = str(environ.get("HTTP_AUTHORIZATION") or "")
    for part in auth.replace(",", " ").split():
        if part.startswith("Credential="):
            scope = part[len("Credential=") :].split("/")
            if len(scope) == 5:
                service = _ALIASES.get(scope[3].lower(), scope[3].lower())
                return service if service in MESSAGING_SERVICES else None
    target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
    return _TARGETS.get(target.split(".", 1)[0])


class MotoMessaging:
    """moto's SQS and EventBridge backends of one emulated account."""

    def __init__(self, account_id: str, lock: threading.RLock, time_scale: float = 1.0) -> None:
        self.account_id = account_id
        self._lock = lock
        self._time_scale = time_scale
        self._calls_lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def answer(self, service: str, environ: dict[str, Any]) -> Outcome:
        """moto's answer to one SQS or EventBridge request."""
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        action = str(environ.get("HTTP_X_AMZ_TARGET") or "").rpartition(".")[2]
        with self._calls_lock:
            self._calls[f"{service}:{action or '(query)'}"] += 1
        try:
            if service == "sqs" and action == "ReceiveMessage":
                return self._receive(environ)
            return self._once(service, environ)
        except Exception:
            log.exception("emulator failed on %s %s", service, action)
            return ec2_error(500, "InternalError", "An internal error has occurred.")

    def _once(self, service: str, environ: dict[str, Any]) -> Outcome:
        handler = SQSResponse if service == "sqs" else EventsHandler
        with self._lock:
            if service == "sqs":
                self._lighten()
            status, headers, body = handler.dispatch(_Request(environ))
        outcome = Outcome(int(status), dict(headers), _text(body))
        outcome.headers.setdefault("Content-Type", "application/x-amz-json-1.0")
        return outcome

    def _receive(self, environ: dict[str, Any]) -> Outcome:
        """A ReceiveMessage, its long poll waited here: moto is asked with no wait until
        it has messages or the (scaled) wait is over."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(raw or b"{}")
            wait = float(params.get("WaitTimeSeconds", 0))
        except (ValueError, TypeError, AttributeError):
            params, wait = None, 0.0
        if not isinstance(params, dict) or not 0 < wait <= 20:
            return self._once("sqs", _with_body(environ, raw))  # moto answers (or refuses)
        body = json.dumps({**params, "WaitTimeSeconds": 0}).encode()
        deadline = time.monotonic() + wait * self._time_scale
        while True:
            outcome = self._once("sqs", _with_body(environ, body))
            if outcome.status != 200 or '"Messages"' in outcome.body:
                return outcome
            left = deadline - time.monotonic()
            if left <= 0:
                return outcome
            time.sleep(min(0.02, left))

    def _lighten(self) -> None:
        """Give each SQS backend of the account made so far the light retention check
        (under the lock; a backend is made at the first call to its region)."""
        for backend in sqs_backends[self.account_id].values():
            if _CHECK not in vars(backend):
                setattr(backend, _CHECK, _retention_check(backend))

    def calls(self) -> dict[str, int]:
        """How many SQS and EventBridge calls were answered, by ``service:Action``."""
        with self._calls_lock:
            return dict(sorted(self._calls.items()))

    def close(self) -> None:
        """Drop moto's SQS and EventBridge backends of this account."""
        sqs_backends.pop(self.account_id, None)
        events_backends.pop(self.account_id, None)


_CHECK = "is_message_valid_based_on_retention_period"


def _retention_check(backend: Any) -> Callable[[str, Any], bool]:
    """moto's check that a message is within its queue's retention period, reading that
    period alone rather than every attribute of the queue."""

    def valid(queue_name: str, message: Any) -> bool:
        retention = float(backend.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    return valid


def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """A copy of the request's environ that carries ``body``."""
    fresh = dict(environ)
    fresh["wsgi.input"] = io.BytesIO(body)
    fresh["CONTENT_LENGTH"] = str(len(body))
    return fresh


def _text(body: Any) -> str:
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)
