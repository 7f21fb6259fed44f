"""Why a bundle fits no node type: the one explanation ``request`` refuses with and the
daemon, ``status``, the log and the metrics report for the scheduler's ``infeasible``.

Pure, and built on ``resources.fits``: a bundle has an explanation exactly when no node
type fits it, so what ``request`` refuses and what the daemon calls infeasible agree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from steadyscale.core.resources import DemandItem, fits, format_bundle
from steadyscale.core.specs import NodeTypeSpec

# A mapping of resource names to amounts, as a bundle or a node type's offer.
Amounts = Mapping[str, float]

# Node types named when no single one offers all of a bundle: the closest ones.
TYPES_NAMED = 3


class Cause(enum.StrEnum):
    """The first reason no node type fits a bundle (a metric label: few, stable values)."""

    NO_NODE_TYPES = "no_node_types"  # the config has no node type at all
    NOT_OFFERED = "not_offered"  # a resource no node type offers
    TOO_LARGE = "too_large"  # more of a resource than any node type offers
    NOT_TOGETHER = "not_together"  # each resource fits some type, no type offers all


@dataclass(frozen=True)
class Infeasible:
    """``count`` bundles of one shape that no node type can hold, and why."""

    bundle: Mapping[str, float]
    count: int
    cause: Cause
    resource: str | None  # the resource the cause names; None for the other causes
    why: str  # e.g. "no node type offers GPU"

    def describe(self) -> str:
        """``4 x {CPU: 4, GPU: 1}: no node type offers GPU``."""
        return f"{self.count} x {format_bundle(dict(self.bundle))}: {self.why}"


def why_infeasible(
    bundle: Amounts, node_types: Mapping[str, NodeTypeSpec]
) -> tuple[Cause, str | None, str] | None:
    """None when some node type fits ``bundle``; else (cause, resource, why in words)."""
    offers = {name: t.resources for name, t in node_types.items()}
    if any(fits(bundle, offer) for offer in offers.values()):
        return None
    if not offers:
        return Cause.NO_NODE_TYPES, None, "no node type is configured"
    absent: list[str] = []
    too_large: list[str] = []
    clauses: list[str] = []
    for name, amount in sorted(bundle.items()):
        most, largest = _most(name, offers)
        if fits({name: amount}, {name: most}):
            continue
        if most <= 0:
            absent.append(name)
        else:
            too_large.append(name)
            clauses.append(
                f"needs {name} {amount:g}, the largest node type offers {most:g} ({largest})"
            )
    if absent:
        clauses.insert(0, f"no node type offers {' or '.join(absent)}")
        return Cause.NOT_OFFERED, absent[0], "; ".join(clauses)
    if too_large:
        return Cause.TOO_LARGE, too_large[0], "; ".join(clauses)
    return Cause.NOT_TOGETHER, None, _not_together(bundle, offers)


def explain_infeasible(
    items: Iterable[DemandItem], node_types: Mapping[str, NodeTypeSpec]
) -> tuple[Infeasible, ...]:
    """The demand no node type fits, one entry per bundle shape (counts added up, in the
    order first demanded), each with why; what fits is left out."""
    counts: dict[tuple[tuple[str, float], ...], int] = {}
    for item in items:
        if item.count > 0:
            shape = tuple(sorted(item.bundle.items()))
            counts[shape] = counts.get(shape, 0) + item.count
    explained = []
    for shape, count in counts.items():
        bundle = dict(shape)
        why = why_infeasible(bundle, node_types)
        if why is not None:
            cause, resource, words = why
            explained.append(Infeasible(bundle, count, cause, resource, words))
    return tuple(explained)


def _most(name: str, offers: Mapping[str, Amounts]) -> tuple[float, str]:
    """The most of a resource any node type offers, and the first type (in config order)
    that offers it."""
    most, largest = 0.0, next(iter(offers))
    for type_name, offer in offers.items():
        if offer.get(name, 0.0) > most:
            most, largest = offer.get(name, 0.0), type_name
    return most, largest


def _not_together(bundle: Amounts, offers: Mapping[str, Amounts]) -> str:
    """Each resource fits some type, but none offers them all: what each lacks, the
    closest types first."""
    lacks: list[tuple[int, str, str]] = []
    for type_name, offer in offers.items():
        short = [
            f"{name} {offer.get(name, 0.0):g} of {amount:g}"
            if offer.get(name, 0.0) > 0
            else f"no {name}"
            for name, amount in sorted(bundle.items())
            if not fits({name: amount}, offer)
        ]
        lacks.append((len(short), type_name, f"{type_name}: {', '.join(short)}"))
    lacks.sort()
    named = [words for _, _, words in lacks[:TYPES_NAMED]]
    if len(lacks) > TYPES_NAMED:
        named.append(f"and {len(lacks) - TYPES_NAMED} more")
    return f"no node type offers all of it together ({'; '.join(named)})"
