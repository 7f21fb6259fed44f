"""Bin-packing of demand onto nodes: a bin per node (existing or new), first-fit, bundles
grouped by shape. The scheduler's policies (which nodes, in what order, how many new ones)
are built on it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from steadyscale.core.resources import DemandItem

# A bundle shape (its resources, sorted) and how many bundles of it.
Shape = tuple[tuple[tuple[str, float], ...], int]


class Bin:
    __slots__ = ("node_id", "node_type", "remaining", "used")

    def __init__(self, node_id: str | None, node_type: str, resources: Mapping[str, float]):
        self.node_id = node_id
        self.node_type = node_type
        self.remaining: Mapping[str, float] = resources  # shared until the first take
        self.used = False

    def capacity_for(self, bundle: Mapping[str, float]) -> int:
        best = math.inf
        for name, amount in bundle.items():
            if amount <= 1e-12:
                continue
            best = min(best, math.floor((self.remaining.get(name, 0.0) + 1e-9) / amount))
        return int(best) if best != math.inf else 1_000_000

    def take(self, bundle: Mapping[str, float], count: int) -> None:
        self.remaining = after(self.remaining, bundle, count)
        self.used = True


def after(
    remaining: Mapping[str, float], bundle: Mapping[str, float], count: int
) -> Mapping[str, float]:
    """What is left of ``remaining`` once ``count`` bundles are placed (a new mapping)."""
    left = dict(remaining)
    for name, amount in bundle.items():
        left[name] = left.get(name, 0.0) - amount * count
    return left


def _size(bundle: Mapping[str, float]) -> tuple[float, ...]:
    return (sum(bundle.values()), *sorted(bundle.values(), reverse=True))


def fill(bins: list[Bin], bundle: Mapping[str, float], count: int) -> int:
    """Place up to ``count`` bundles first-fit; return how many are left."""
    # Untouched bins of a type all hold what the type offers: their room, and what is left
    # of them once filled, are computed once per type and shared (never mutated in place).
    fresh: dict[str, int] = {}
    filled: dict[tuple[str, int], Mapping[str, float]] = {}
    for b in bins:
        if count == 0:
            break
        if b.used:
            k = min(count, b.capacity_for(bundle))
            if k > 0:
                b.take(bundle, k)
                count -= k
            continue
        room = fresh.get(b.node_type)
        if room is None:
            room = fresh[b.node_type] = b.capacity_for(bundle)
        k = min(count, room)
        if k > 0:
            left = filled.get((b.node_type, k))
            if left is None:
                left = filled[(b.node_type, k)] = after(b.remaining, bundle, k)
            b.remaining = left
            b.used = True
            count -= k
    return count


def fill_all(bins: list[Bin], shapes: Sequence[Shape]) -> list[tuple[dict[str, float], int]]:
    """Place every shape's bundles onto ``bins`` in turn; what no bin holds, by shape."""
    leftover: list[tuple[dict[str, float], int]] = []
    for key, count in shapes:
        bundle = dict(key)
        rest = fill(bins, bundle, count)
        if rest:
            leftover.append((bundle, rest))
    return leftover


def shape_key(bundle: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """A bundle's shape: its resources, sorted."""
    return tuple(sorted(bundle.items()))


def placed(
    bundles: Sequence[tuple[dict[str, float], int]], left: Sequence[tuple[dict[str, float], int]]
) -> list[tuple[dict[str, float], int]]:
    """``bundles`` by shape less what ``left`` still has of each: what was placed."""
    rest = {shape_key(bundle): n for bundle, n in left}
    taken = [(bundle, n - rest.get(shape_key(bundle), 0)) for bundle, n in bundles]
    return [(bundle, n) for bundle, n in taken if n > 0]


def shapes(demand: Sequence[DemandItem]) -> list[Shape]:
    """The demand's bundles by shape, largest first."""
    by_shape: dict[tuple[tuple[str, float], ...], int] = {}
    for item in demand:
        if item.count > 0:
            key = shape_key(item.bundle)
            by_shape[key] = by_shape.get(key, 0) + item.count
    return sorted(by_shape.items(), key=lambda kv: _size(dict(kv[0])), reverse=True)


def utilization(resources: Mapping[str, float], bundle: Mapping[str, float], k: int) -> float:
    shares = [
        min(1.0, bundle.get(name, 0.0) * k / cap) for name, cap in resources.items() if cap > 0
    ]
    return sum(shares) / len(shares) if shares else 0.0
