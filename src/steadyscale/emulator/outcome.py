"""What the emulator answers one EC2 request with, before it is sent: status, headers and
body, plus what the call log records of it (outcome, fault, instances affected).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from steadyscale.ec2model.gate import Fault, Refusal


@dataclass
class Outcome:
    status: int
    headers: dict[str, str]
    body: str
    outcome: str = "ok"  # "ok", an EC2 error code, or "timeout"
    fault: Fault | None = None
    instances: int = 0  # instances launched or terminated by the call


def ec2_error(status: int, code: str, message: str) -> Outcome:
    """An error answer in EC2's XML shape."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    )
    return Outcome(status, {"Content-Type": "text/xml"}, body, outcome=code)


def refused(refusal: Refusal, *, instances: int = 0) -> Outcome:
    """The answer the model's gate gave instead of the call's own."""
    outcome = ec2_error(refusal.status, refusal.code, refusal.message)
    outcome.fault = refusal.fault
    outcome.instances = instances
    return outcome
