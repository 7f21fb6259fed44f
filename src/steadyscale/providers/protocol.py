"""The cloud provider protocol, the values that cross it, and the helpers every backend
uses to answer it the same way (chunks of ids, by-id calls, terminate, lookups).

Every result is eventually consistent: an instance that RunInstances just returned may be
missing from ``list_cluster`` and ``describe`` for seconds or minutes, and a listing may
show a state older than the truth. Callers treat "not shown" as "not visible yet", never
as "gone"; ``lookup`` says so explicitly with ``NotVisibleYet``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from steadyscale.core.instances import (
    CloudInstance,
)
from steadyscale.errors import CloudUnavailable, LaunchRejected, Throttled
from steadyscale.retries.backoff import Backoff, retry_until
from steadyscale.retries.clock import Clock

# Ids per lookup call; EC2 documents limits of this order for filter values.
LOOKUP_BATCH = 200
NOT_FOUND = "InvalidInstanceID.NotFound"
MALFORMED_ID = "InvalidInstanceID.Malformed"
_INSTANCE_ID = re.compile(r"i-[0-9a-fA-F]+")
T = TypeVar("T")
# Between attempts of a single-instance lookup: full jitter on 0.2 s doubling, at most 2 s.
LOOKUP_BACKOFF = Backoff(base=0.2, cap=2.0)


@dataclass(frozen=True)
class NotVisibleYet:
    """A lookup found nothing yet. Not an error: EC2 may simply not show it yet."""

    instance_id: str
    attempts: int
    reason: str = "not visible yet"


@dataclass(frozen=True)
class LaunchSpec:
    request_id: str
    client_token: str
    node_type: str
    count: int
    node_config: Mapping[str, Any]
    subnet_id: str | None = None
    # The cluster tag to launch under; None: the provider's. A resend of a launch first
    # sent under a former cluster name (carried over) carries that name: EC2 refuses a
    # ClientToken repeated with other tags.
    cluster_name: str | None = None


@dataclass(frozen=True)
class LaunchResult:
    """What RunInstances answered: between 1 and ``count`` instances."""

    instances: tuple[CloudInstance, ...]


@dataclass(frozen=True)
class TerminateResult:
    states: Mapping[str, str]  # instance id -> state EC2 reported after the call
    not_found: tuple[str, ...] = ()  # ids EC2 said it does not know (yet, or any more)
    refused: Mapping[str, str] = field(default_factory=dict)  # id -> why EC2 refused it


@dataclass(frozen=True)
class ApiCall:
    """One cloud API call as the provider saw it, for metrics.

    ``error`` is the final error code (EC2's, or a transport error's name) when the call
    failed; ``retried`` the error codes of the attempts that were retried before the end.
    """

    action: str
    error: str | None = None
    retried: tuple[str, ...] = ()


class ApiObserver(Protocol):
    """Told about every API call a provider makes (``Metrics.api_call`` is one)."""

    def __call__(self, call: ApiCall, /) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """How a provider calls EC2, whatever the backend: attempts per call (retried on
    throttling and 5xx, as the SDK's standard mode), the deadline of a single-instance
    lookup, client-side token buckets per action as (capacity, refill per second) and how
    long a call may wait for its token, and who hears of every call (the metrics)."""

    max_attempts: int = 3
    lookup_deadline: float = 5.0
    rate_limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    rate_limit_max_wait: float = 2.0
    observer: ApiObserver | None = None


DEFAULT_OPTIONS = ClientOptions()


class CloudProvider(Protocol):
    """What the autoscaler needs from a cloud. Calls raise ``CloudError`` subclasses:
    ``Throttled``, ``CloudUnavailable`` (the call may have happened), ``CapacityUnavailable``,
    ``LaunchRejected``; ``ProviderSetupError`` when the cloud cannot be used at all."""

    cluster_name: str

    def preflight(self) -> None:
        """Check credentials and the endpoint with one cheap call."""

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        """RunInstances with MinCount=1, MaxCount=count, ClientToken, tags at creation.
        Repeating a spec (same ClientToken) returns the same instances."""
        ...

    def launch_budget(self) -> int:
        """Instances that may be launched now without exceeding EC2's instance bucket."""
        ...

    def list_cluster(self) -> list[CloudInstance]:
        """Every instance tagged with the cluster, all states, all pages."""
        ...

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        """Instances among ``instance_ids`` that EC2 shows now; unknown ids are omitted."""
        ...

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        """Like ``describe``, through EC2's by-id view, which often shows a new instance
        sooner than listings do; ids EC2 does not know yet are omitted."""
        ...

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        """One instance, retried with backoff under the lookup deadline."""
        ...

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        """Terminate, idempotently. Ids EC2 does not know yet come back in ``not_found``."""
        ...

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        """Every instance whose tag ``key`` is ``value`` (in ``states`` if given), all pages.
        A fresh instance, or a tag just set, may be missing for a while."""
        ...

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        """Set ``tags`` on instances; returns the ids EC2 does not know yet (tag them later)."""
        ...

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        """StopInstances or StartInstances; ids EC2 does not know yet come back in
        ``not_found``, and the answer's states are what EC2 reported after the call."""
        ...

    def calls_by_action(self) -> dict[str, int]:
        """API calls made so far, by EC2 action."""
        ...


def chunks(ids: Sequence[str], size: int) -> Iterator[list[str]]:
    """The distinct ids, in their order, ``size`` at a time (one API call each)."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


@dataclass(frozen=True)
class LookupPolicy:
    """How long ``lookup`` looks for one instance, on which clock, and the stream its
    full-jitter backoff draws from."""

    clock: Clock
    deadline_seconds: float
    rng: random.Random


def lookup_until_visible(
    describe: Callable[[Sequence[str]], list[CloudInstance]],
    instance_id: str,
    policy: LookupPolicy,
) -> CloudInstance | NotVisibleYet:
    """``CloudProvider.lookup`` for any backend: ``describe`` one id with full-jitter
    backoff until it shows or the deadline passes. Throttling and 5xx answers count as
    "nothing yet"; the answer is ``NotVisibleYet``, never an exception about absence."""
    last_error: list[str] = []

    def fetch() -> CloudInstance | None:
        try:
            shown = describe([instance_id])
        except (Throttled, CloudUnavailable) as exc:
            last_error[:] = [exc.code]
            return None
        return shown[0] if shown else None

    found, attempts = retry_until(
        fetch,
        clock=policy.clock,
        deadline_seconds=policy.deadline_seconds,
        backoff=LOOKUP_BACKOFF,
        rng=policy.rng,
    )
    if found is not None:
        return found
    reason = f"not visible yet ({last_error[0]})" if last_error else "not visible yet"
    return NotVisibleYet(instance_id=instance_id, attempts=attempts, reason=reason)


def call_dropping_unknown(
    call: Callable[[list[str]], T], ids: list[str]
) -> tuple[T | None, list[str]]:
    """A by-id call (DescribeInstances by id, TerminateInstances, ...) fails as a whole on
    an id EC2 does not know yet, naming it: drop the named ids (all of them when the
    message names none, as for a malformed id) and call again for the rest.

    Returns (the answer, or None when no id was left; the dropped ids).
    """
    dropped: list[str] = []
    remaining = ids
    while remaining:
        try:
            return call(remaining), dropped
        except LaunchRejected as exc:
            if exc.code not in (NOT_FOUND, MALFORMED_ID):
                raise
            missing = set(_INSTANCE_ID.findall(exc.message)) & set(remaining) or set(remaining)
            dropped.extend(sorted(missing))
            remaining = [i for i in remaining if i not in missing]
    return None, dropped


# One by-id call on some ids: (the state EC2 reported for each, the ids it dropped as unknown).
StatesCall = Callable[[list[str]], tuple[Mapping[str, str], list[str]]]


def call_in_chunks(
    call: StatesCall,
    instance_ids: Sequence[str],
    *,
    chunk_size: int,
    one_by_one_if_refused: bool = False,
) -> TerminateResult:
    """``call`` on the distinct ids, ``chunk_size`` at a time, gathered into one result.

    With ``one_by_one_if_refused``, a chunk EC2 refuses (``LaunchRejected``) is called again
    one id at a time, so one refused id does not hold back the others; the refused ids come
    back in ``refused`` with EC2's reason. Without it, the refusal is raised.
    """
    states: dict[str, str] = {}
    not_found: list[str] = []
    refused: dict[str, str] = {}
    for chunk in chunks(instance_ids, chunk_size):
        try:
            answers = [call(chunk)]
        except LaunchRejected:
            if not one_by_one_if_refused:
                raise
            answers = []
            for instance_id in chunk:
                try:
                    answers.append(call([instance_id]))
                except LaunchRejected as exc:
                    refused[instance_id] = f"{exc.code}: {exc.message}"
        for reported, dropped in answers:
            not_found.extend(dropped)
            states.update(reported)
    return TerminateResult(states=states, not_found=tuple(not_found), refused=refused)


def terminate_in_chunks(
    terminate: StatesCall, instance_ids: Sequence[str], *, chunk_size: int
) -> TerminateResult:
    """``CloudProvider.terminate`` for any backend, on its TerminateInstances ``terminate``.
    One protected instance (OperationNotPermitted) fails a whole TerminateInstances, so a
    refused chunk is terminated one by one and the protected ids are reported as refused."""
    return call_in_chunks(
        terminate, instance_ids, chunk_size=chunk_size, one_by_one_if_refused=True
    )
