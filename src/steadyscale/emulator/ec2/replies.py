"""Answers in moto's serialisation: a result, an EC2 client error, and the error code of an
answer moto produced by itself.
"""

from __future__ import annotations

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from steadyscale.emulator.outcome import Outcome


class ClientError(EC2ClientError):
    """An EC2 client error (400) with our code and message, serialised as moto's own."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


def ok(response: EC2Response, result: ActionResult) -> Outcome:
    status, headers, body = response.serialized(result)
    headers, body = response._enrich_response(headers, body)
    return Outcome(int(status), dict(headers), str(body))


def serialized_error(response: EC2Response, exc: ServiceException) -> Outcome:
    status, headers, body = response.serialized(ActionResult(exc))
    return Outcome(int(status), dict(headers), str(body), outcome=exc.code)


def error_code(body: str) -> str:
    """The ``<Code>`` of an error answer moto produced by itself."""
    start = body.find("<Code>")
    end = body.find("</Code>", start)
    return body[start + 6 : end] if start >= 0 and end > start else "Error"
