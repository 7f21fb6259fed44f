"""Who acted on EC2 when: the emulator's call log split into the terms of each replica, and
the check that no two replicas ever acted in the same instant (invariant I8).

The emulator sees every replica's calls on one clock. A mutation can take effect only
between the moment the emulator received it and the moment it answered, so that window is
when the call acted. A *term* is a maximal run of mutations one replica sent with no other
replica's mutation received in between; its span runs from its first mutation's receipt to
the latest answer of any of them. Two replicas acted in the same instant exactly when the
span of a term of one intersects the span of a term of another: a mutation of the second
arrived while the first still had one being answered, or the first sent one after the
second had begun.

That alone misses two replicas that both believe they lead but happen to take turns call
by call. A lease rules that out more strictly: the leader sends nothing past its last
renewal + TTL - margin, a successor takes over only once the lease expired (renewal + TTL
by the database's clock), so each handover (one replica's term ending, another's
beginning) leaves a quiet gap of at least the margin, less the travel time of the
ex-leader's last request. ``hurried(floor)`` names the handovers quieter than ``floor``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any


@dataclass(frozen=True)
class Mutation:
    """One call that changes something, as the emulator logged it (emulated seconds)."""

    replica: str | None
    action: str
    received_at: float
    answered_at: float

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Mutation:
        """From a record of ``/_steadyscale/calls``; a record without ``received_at``
        acted at its answer."""
        answered = float(record["at"])
        received = record.get("received_at")
        return cls(
            replica=record.get("replica"),
            action=str(record["action"]),
            received_at=answered if received is None else float(received),
            answered_at=answered,
        )


@dataclass(frozen=True)
class Term:
    """A run of mutations by one replica, none of another's received in between."""

    replica: str | None
    start: float  # the first mutation's receipt
    end: float  # the latest answer among them
    calls: int


@dataclass(frozen=True)
class Overlap:
    """Two terms of different replicas that share an instant."""

    first: Term
    second: Term

    def describe(self) -> str:
        return (
            f"{self.second.replica} began acting at {self.second.start:.3f} while "
            f"{self.first.replica} acted until {self.first.end:.3f}"
        )


def mutations(records: Iterable[Mapping[str, Any]]) -> list[Mutation]:
    """The records that change something, in the order the emulator received them."""
    found = [Mutation.from_json(r) for r in records if r.get("mutation", True)]
    return sorted(found, key=lambda m: (m.received_at, m.answered_at))


def terms(calls: Sequence[Mutation]) -> list[Term]:
    """The terms, in order; ``calls`` in order of receipt."""
    found: list[Term] = []
    for call in calls:
        if found and found[-1].replica == call.replica:
            last = found[-1]
            found[-1] = Term(
                last.replica, last.start, max(last.end, call.answered_at), last.calls + 1
            )
        else:
            found.append(Term(call.replica, call.received_at, call.answered_at, 1))
    return found


def overlaps(found: Sequence[Term]) -> list[Overlap]:
    """Every term that began while a term of another replica was still acting."""
    clashes: list[Overlap] = []
    longest: dict[str | None, Term] = {}  # per replica, its term acting until the latest
    for term in found:
        clashes += [
            Overlap(other, term)
            for replica, other in longest.items()
            if replica != term.replica and term.start <= other.end
        ]
        mine = longest.get(term.replica)
        if mine is None or term.end > mine.end:
            longest[term.replica] = term
    return clashes


@dataclass(frozen=True)
class Handover:
    """One term followed by another replica's, and the quiet time between them (emulated
    seconds, negative when they overlap)."""

    first: Term
    second: Term

    @property
    def gap(self) -> float:
        return self.second.start - self.first.end

    def describe(self) -> str:
        return (
            f"{self.second.replica} began acting {self.gap:.3f} s after {self.first.replica} "
            f"last did (at {self.first.end:.3f})"
        )


@dataclass(frozen=True)
class ActingReport:
    """What the call log says about who acted when."""

    terms: list[Term]
    overlaps: list[Overlap]
    unnamed: int  # mutations without a replica id in their User-Agent

    @property
    def handovers(self) -> list[Handover]:
        return [Handover(a, b) for a, b in pairwise(self.terms)]

    @property
    def min_gap(self) -> float | None:
        """The quietest handover's gap (emulated seconds); None without a handover."""
        return min((h.gap for h in self.handovers), default=None)

    def hurried(self, floor: float) -> list[Handover]:
        """The handovers quieter than ``floor`` emulated seconds."""
        return [h for h in self.handovers if h.gap < floor]

    @property
    def replicas(self) -> list[str]:
        """The replicas that acted, in the order they first did."""
        seen: dict[str, None] = {}
        for term in self.terms:
            seen.setdefault(str(term.replica), None)
        return list(seen)


def acting(records: Iterable[Mapping[str, Any]]) -> ActingReport:
    """Terms, overlaps and handovers of a call log's records."""
    calls = mutations(records)
    found = terms(calls)
    return ActingReport(
        terms=found,
        overlaps=overlaps(found),
        unnamed=sum(1 for c in calls if c.replica is None),
    )
