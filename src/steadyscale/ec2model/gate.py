"""The gate every EC2 call passes before it is answered: EC2's token buckets may refuse it
(RequestLimitExceeded), then an injected or random fault may hit it: a server error (nothing
done), a lost response or a timeout (done, the answer lost). The emulator's server and the
in-memory backend both draw here, in this order, from the same seeded streams.
"""

from __future__ import annotations

import difflib
import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from steadyscale.config import ec2_actions
from steadyscale.ec2model.settings import Bucket, EmulatorSettings
from steadyscale.retries.tokenbucket import TokenBucket


class Fault(StrEnum):
    """A server-side fault that hits one API call."""

    SERVER_ERROR = "server_error"  # nothing done; 500 InternalError or 503 Unavailable
    LOST_RESPONSE = "lost_response"  # done; the client gets 500 InternalError
    TIMEOUT = "timeout"  # done; the client never gets an answer


# The most calls one injection may hit: far beyond any test's need, and a request for
# more is a mistake (a count meant as something else).
MAX_INJECTED_CALLS = 100_000


def check_injection(action: str, count: int) -> None:
    """Refuse (ValueError) an injection no call would ever meet, or a count out of bounds:
    ``action`` must be one of EC2's actions as botocore's model lists them, or ``*``."""
    if action != "*" and action not in ec2_actions():
        close = difflib.get_close_matches(action, ec2_actions(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(
            f"action {action!r} is not an EC2 action{hint}; give one such as RunInstances, "
            "or * for any"
        )
    if not 1 <= count <= MAX_INJECTED_CALLS:
        raise ValueError(f"count must be from 1 to {MAX_INJECTED_CALLS}, got {count}")


@dataclass(eq=False)  # removed by identity: two injections may look alike
class PendingFaults:
    """The next ``remaining`` calls of ``action`` (an EC2 action name, or "*" for any) hit
    ``fault``: one entry per injection, whatever its count."""

    action: str
    fault: Fault
    remaining: int


@dataclass(frozen=True)
class Refusal:
    """What a caller gets instead of a call's own answer. ``status`` 0: no answer at all."""

    code: str
    status: int
    message: str
    fault: Fault | None = None

    @property
    def throttled(self) -> bool:
        return self.code == THROTTLED.code


THROTTLED = Refusal("RequestLimitExceeded", 503, "Request limit exceeded.")
_SERVER_ERRORS = (
    Refusal("InternalError", 500, "An internal error has occurred. Try again.", Fault.SERVER_ERROR),
    Refusal(
        "Unavailable",
        503,
        "The server is overloaded and can't handle the request.",
        Fault.SERVER_ERROR,
    ),
)
_LOST = Refusal("InternalError", 500, "An internal error has occurred.", Fault.LOST_RESPONSE)
_TIMED_OUT = Refusal("timeout", 0, "The server held the answer and dropped it.", Fault.TIMEOUT)


@dataclass(frozen=True)
class Draw:
    """What the gate decided for one call: refused before anything was done, or let through,
    perhaps with a fault that hides its answer afterwards."""

    refusal: Refusal | None = None
    fault: Fault | None = None

    def hidden(self) -> Refusal | None:
        """What the caller sees instead of the answer of a call that was let through and
        done: a lost response or a timeout; None when the answer gets through."""
        if self.fault is Fault.LOST_RESPONSE:
            return _LOST
        if self.fault is Fault.TIMEOUT:
            return _TIMED_OUT
        return None


def _buckets(buckets: dict[str, Bucket], scale: float) -> dict[str, TokenBucket]:
    return {
        name: TokenBucket(b.capacity * scale, b.refill_per_second * scale)
        for name, b in buckets.items()
    }


class CallGate:
    """Throttling and faults of one region: its token buckets, the faults a test injected,
    and the seeded streams random faults are drawn from."""

    def __init__(self, settings: EmulatorSettings, seed: str) -> None:
        self.settings = settings
        self._fault_rng = random.Random(f"{seed}/faults")
        # Which 5xx a server error answers with.
        self._error_rng = random.Random(f"{seed}/server")
        self._injected: deque[PendingFaults] = deque()
        throttling = settings.throttling
        self._request_buckets = _buckets(throttling.request_buckets, throttling.scale)
        self._resource_buckets = _buckets(throttling.resource_buckets, throttling.scale)

    def draw(self, action: str, now: float, resources: int = 0) -> Draw:
        """Throttle, then draw a fault: what happens to one call of ``action`` now.
        ``resources`` is what the call charges its resource bucket up front."""
        if self.throttle(action, now, resources):
            return Draw(refusal=THROTTLED)
        fault = self.draw_fault(action)
        if fault is Fault.SERVER_ERROR:
            return Draw(refusal=_SERVER_ERRORS[self._error_rng.random() >= 0.5], fault=fault)
        return Draw(fault=fault)

    def throttle(self, action: str, now: float, resources: int = 0) -> bool:
        """True when the call must be refused with RequestLimitExceeded."""
        if not self.settings.throttling.enabled:
            return False
        bucket = self._request_buckets.get(action)
        if bucket is None:
            non_mutating = action.startswith(("Describe", "Get", "List"))
            bucket = self._request_buckets.get("non-mutating" if non_mutating else "mutating")
        if bucket is not None and not bucket.try_take(now):
            return True
        resource_bucket = self._resource_buckets.get(action)
        return (
            resources > 0
            and resource_bucket is not None
            and not resource_bucket.try_take(now, min(resources, resource_bucket.capacity))
        )

    def resource_budget(self, action: str, now: float) -> int | None:
        """Resources (instances) the action's resource bucket allows now; None: no limit."""
        bucket = self._resource_buckets.get(action)
        if not self.settings.throttling.enabled or bucket is None:
            return None
        return int(bucket.available(now) + 1e-9)

    def consume_resources(self, action: str, count: int, now: float) -> None:
        """EC2 depletes a resource bucket by the resources a call affected."""
        bucket = self._resource_buckets.get(action)
        if self.settings.throttling.enabled and bucket is not None and count > 0:
            bucket.try_take(now, min(count, bucket.available(now)))

    def inject(self, fault: Fault, action: str = "*", count: int = 1) -> None:
        """Make the next ``count`` calls of ``action`` (or any, with ``*``) hit ``fault``,
        after the faults injected before that match them."""
        check_injection(action, count)
        self._injected.append(PendingFaults(action, fault, count))

    def draw_fault(self, action: str) -> Fault | None:
        """An injected fault for ``action`` first, else one drawn at the set rates."""
        for pending in self._injected:
            if pending.action in ("*", action):
                pending.remaining -= 1
                if not pending.remaining:
                    self._injected.remove(pending)
                return pending.fault
        errors = self.settings.errors
        roll = self._fault_rng.random()
        if roll < errors.server_error_probability:
            return Fault.SERVER_ERROR
        roll -= errors.server_error_probability
        if roll < errors.lost_response_probability:
            return Fault.LOST_RESPONSE
        roll -= errors.lost_response_probability
        if roll < errors.timeout_probability:
            return Fault.TIMEOUT
        return None
