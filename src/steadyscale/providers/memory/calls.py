"""EC2 calls as the SDK makes them, answered by the region model in this process.

A call is paced by the client's token buckets, then attempted up to ``max_attempts`` times
with botocore's standard backoff while EC2 throttles or fails. Each attempt passes the
model's gate (throttling, then faults) at the clock's current time and lands in the call
log as the emulator records it. By-id calls fail whole on an id EC2 does not show yet.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from steadyscale.ec2model.calllog import CallLog, CallRecord
from steadyscale.ec2model.gate import Fault, Refusal
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import Operation
from steadyscale.errors import (
    CloudError,
    CloudUnavailable,
    SteadyscaleError,
    Throttled,
    cloud_error,
)
from steadyscale.providers.byid import NOT_FOUND, call_dropping_unknown
from steadyscale.providers.protocol import ApiCall, ApiObserver, FleetResult, LaunchResult
from steadyscale.retries.backoff import Backoff
from steadyscale.retries.clock import Clock
from steadyscale.retries.pacing import ClientPacer

T = TypeVar("T")

# botocore's standard retry mode: full jitter on 2^attempt seconds, at most 20 s.
_SDK_BACKOFF = Backoff(base=1.0, cap=20.0)


def _error_of(refusal: Refusal) -> CloudError:
    """What the SDK raises for an answer the gate gave instead of the call's own."""
    if refusal.fault is Fault.TIMEOUT:
        return CloudUnavailable("ReadTimeoutError", "Read timeout on endpoint URL")
    kind = Throttled if refusal.throttled else CloudUnavailable
    return kind(refusal.code, refusal.message)


class ModelCalls:
    """The call plumbing of the in-memory backend: pacing, retries, the gate, the call log;
    ``observer`` hears of every call. Not thread-safe: one caller."""

    def __init__(
        self,
        *,
        model: RegionModel,
        clock: Clock,
        pacer: ClientPacer,
        rng: random.Random,
        max_attempts: int,
        observer: ApiObserver | None,
    ) -> None:
        self.model = model
        self.log = CallLog(keep=2_000_000)
        self.counts: Counter[str] = Counter()
        # Shared with the provider's lookups, so the client's stream is one as before.
        self.rng = rng
        self.observer = observer
        self._clock = clock
        self._pacer = pacer
        self._max_attempts = max_attempts

    def _record(
        self, action: str, outcome: str, status: int, fault: Fault | None = None, instances: int = 0
    ) -> None:
        self.log.add(
            CallRecord(
                at=self._clock.now(),
                region=self.model.region,
                action=action,
                outcome=outcome,
                status=status,
                latency_ms=0.0,
                fault=fault.value if fault else None,
                instances=instances,
            )
        )

    def call(self, action: str, work: Callable[[float], T], *, resources: int = 0) -> T:
        """One API call as the SDK makes it: paced, then attempted up to ``max_attempts``
        times while EC2 throttles or fails; each attempt is throttled, faulted and
        answered by the model at the clock's current time."""
        self._pacer.pace(action)
        self.counts[action] += 1
        attempt = 0
        retried: list[str] = []
        while True:
            attempt += 1
            error = self._attempt(action, work, resources)
            if not isinstance(error, CloudError):
                if self.observer is not None:
                    self.observer(ApiCall(action, None, tuple(retried)))
                return error
            retryable = isinstance(error, (Throttled, CloudUnavailable))
            if not retryable or attempt >= self._max_attempts:
                if self.observer is not None:
                    self.observer(ApiCall(action, error.code, tuple(retried)))
                raise error
            retried.append(error.code)
            self._clock.sleep(_SDK_BACKOFF.delay(attempt - 1, self.rng))

    def _attempt(self, action: str, work: Callable[[float], T], resources: int) -> T | CloudError:
        now = self._clock.now()
        model = self.model
        model.advance(now)
        draw = model.gate.draw(action, now, resources)
        if draw.refusal is not None:
            refusal = draw.refusal
            self._record(action, refusal.code, refusal.status, refusal.fault)
            return _error_of(refusal)
        refused: CloudError | None = None
        try:
            answer: T | None = work(now)
        except CloudError as exc:
            answer, refused = None, exc
        launches = (LaunchResult, FleetResult)
        instances = len(answer.instances) if isinstance(answer, launches) else 0
        # A lost answer or a timeout hides whatever EC2 answered, an error included.
        hidden = draw.hidden()
        if hidden is not None:
            if hidden.fault is Fault.TIMEOUT:
                self._clock.sleep(model.settings.errors.timeout_seconds)
            self._record(action, hidden.code, hidden.status, hidden.fault, instances)
            return _error_of(hidden)
        if refused is not None:
            status = 503 if isinstance(refused, Throttled) else 400
            self._record(action, refused.code, status, draw.fault)
            return refused
        self._record(action, "ok", 200, None, instances)
        return cast(T, answer)

    def by_id(
        self,
        action: str,
        ids: list[str],
        work: Callable[[list[str], float], T],
        operation: Operation,
        *,
        resources: bool = False,
    ) -> tuple[T | None, list[str]]:
        """A by-id call: one id the ``operation`` does not show yet fails it, naming the
        ids; drop those and call again, exactly as the boto3 provider does."""
        model = self.model

        def call(chosen: list[str]) -> T:
            def attempt(now: float) -> T:
                missing = [
                    i
                    for i in chosen
                    if not model.tracks(i) or not model.visibility.is_visible(i, operation, now)
                ]
                if missing:
                    raise _not_found(missing)
                return work(chosen, now)

            return self.call(action, attempt, resources=len(chosen) if resources else 0)

        return call_dropping_unknown(call, ids)


def _not_found(missing: Sequence[str]) -> SteadyscaleError:
    listed = ", ".join(missing)
    return cloud_error(NOT_FOUND, f"The instance IDs '{listed}' do not exist")
