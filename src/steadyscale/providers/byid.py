"""EC2's calls on lists of instance ids, as every backend makes them, so the backends answer
the protocol alike: distinct ids in chunks; a by-id call that fails as a whole on an id EC2
does not know yet, repeated without the ids it names; a chunk EC2 refuses (one protected
instance fails a whole TerminateInstances) sent again one id at a time; a single-instance
lookup retried with backoff under a deadline, whose answer is "not visible yet", never an
error about absence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from steadyscale.core.instances import CloudInstance
from steadyscale.errors import CloudUnavailable, LaunchRejected, Throttled
from steadyscale.providers.protocol import NotVisibleYet, TerminateResult
from steadyscale.retries.backoff import Backoff, retry_until
from steadyscale.retries.clock import Clock

NOT_FOUND = "InvalidInstanceID.NotFound"
MALFORMED_ID = "InvalidInstanceID.Malformed"
_INSTANCE_ID = re.compile(r"i-[0-9a-fA-F]+")
T = TypeVar("T")
# Between attempts of a single-instance lookup: full jitter on 0.2 s doubling, at most 2 s.
LOOKUP_BACKOFF = Backoff(base=0.2, cap=2.0)


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
