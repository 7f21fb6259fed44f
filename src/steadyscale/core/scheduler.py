"""Pure scheduling: demand and current nodes in, node types to launch and nodes to drop out.

Demand is resource bundles (``{CPU: 4, GPU: 1}`` x count). Bundles are first packed onto
nodes that exist or are on their way (running first), the rest bin-packed into new nodes
of the type that wastes least (ties: higher ``priority``). Per-type and cluster-wide
maximums, ``min_workers`` and ``upscaling_speed`` bound the result; nodes idle past the
idle timeout are dropped, never below ``min_workers``. No clock, no cloud: the caller
passes ``now`` and the snapshot.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from steadyscale.core.lifecycle import STARTING, Status
from steadyscale.core.resources import DemandItem, fits
from steadyscale.core.specs import NodeTypeSpec

# Preference when placing demand on existing nodes: usable ones first.
_PLACEMENT_ORDER = {
    Status.READY: 0,
    Status.RUNNING: 1,
    Status.PENDING: 2,
    Status.LAUNCHED: 3,
    Status.REQUESTED: 4,
    Status.QUEUED: 5,
}
# Preference when dropping idle nodes: ones that never became useful first.
_DROP_ORDER = {
    Status.QUEUED: 0,
    Status.LAUNCHED: 1,
    Status.PENDING: 2,
    Status.RUNNING: 3,
    Status.READY: 4,
}
MIN_PENDING_CAP = 5
_AGE_AND_ID = operator.itemgetter(3, 0)  # NodeView's created_at, node_id
_NODE_TYPE = operator.itemgetter(1)
_STATUS = operator.itemgetter(2)


class NodeView(NamedTuple):
    """A node as the scheduler sees it; a named tuple, cheap to build by the ten thousand."""

    node_id: str
    node_type: str
    status: Status
    created_at: float
    idle_since: float | None = None


@dataclass(frozen=True)
class SchedulingInput:
    node_types: Mapping[str, NodeTypeSpec]
    max_workers: int
    upscaling_speed: float
    idle_timeout_seconds: float
    now: float
    demand: Sequence[DemandItem]
    nodes: Sequence[NodeView]  # nodes in an ACTIVE status
    unavailable_types: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    launch: dict[str, int] = field(default_factory=dict)
    drop: tuple[str, ...] = ()  # node ids to cancel (queued) or terminate
    busy: frozenset[str] = frozenset()  # node ids some demand is placed on
    infeasible: tuple[DemandItem, ...] = ()  # bundles no node type can ever fit
    unmet: int = 0  # bundles left without a node because of limits or pacing


class _Bin:
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
        self.remaining = _after(self.remaining, bundle, count)
        self.used = True


def _after(
    remaining: Mapping[str, float], bundle: Mapping[str, float], count: int
) -> Mapping[str, float]:
    """What is left of ``remaining`` once ``count`` bundles are placed (a new mapping)."""
    left = dict(remaining)
    for name, amount in bundle.items():
        left[name] = left.get(name, 0.0) - amount * count
    return left


def _size(bundle: Mapping[str, float]) -> tuple[float, ...]:
    return (sum(bundle.values()), *sorted(bundle.values(), reverse=True))


def _fill(bins: list[_Bin], bundle: Mapping[str, float], count: int) -> int:
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
                left = filled[(b.node_type, k)] = _after(b.remaining, bundle, k)
            b.remaining = left
            b.used = True
            count -= k
    return count


def _utilization(node_type: NodeTypeSpec, bundle: Mapping[str, float], k: int) -> float:
    shares = [
        min(1.0, bundle.get(name, 0.0) * k / cap)
        for name, cap in node_type.resources.items()
        if cap > 0
    ]
    return sum(shares) / len(shares) if shares else 0.0


def schedule(inp: SchedulingInput) -> Decision:
    types = inp.node_types
    nodes = _by_placement(inp.nodes)
    offers = {name: t.resources for name, t in types.items()}
    bins = [
        _Bin(n.node_id, n.node_type, offers[n.node_type]) for n in nodes if n.node_type in offers
    ]

    # 1. Pack demand onto nodes that exist or are on their way.
    leftover: list[tuple[dict[str, float], int]] = []
    for key, count in _shapes(inp.demand):
        bundle = dict(key)
        rest = _fill(bins, bundle, count)
        if rest:
            leftover.append((bundle, rest))

    # 2. Bin-pack the rest into new nodes.
    existing = Counter(map(_NODE_TYPE, nodes))
    launch, infeasible, unmet = _open_new(inp, leftover, existing, len(nodes))

    # 3. Pace: at most max(5, upscaling_speed x max(1, ready)) nodes starting at once.
    unmet += _pace(launch, nodes, types, inp.upscaling_speed)
    launch = {name: n for name, n in launch.items() if n > 0}

    # 4. min_workers are kept whatever the pacing.
    for name, t in types.items():
        have = existing[name] + launch.get(name, 0)
        if have < t.min_workers:
            launch[name] = launch.get(name, 0) + (t.min_workers - have)

    busy = frozenset(b.node_id for b in bins if b.used and b.node_id is not None)

    # 5. Scale down idle nodes, never below min_workers; honour lowered maximums.
    drop = _scale_down(inp, nodes, busy, existing)
    return Decision(
        launch=launch, drop=tuple(drop), busy=busy, infeasible=tuple(infeasible), unmet=unmet
    )


def _by_placement(nodes: Sequence[NodeView]) -> list[NodeView]:
    """By placement order, then age and id: sorted by the last two in C, then split into
    the (few) placement ranks, which keeps each rank's order."""
    by_rank: dict[int, list[NodeView]] = {}
    for n in sorted(nodes, key=_AGE_AND_ID):
        by_rank.setdefault(_PLACEMENT_ORDER.get(n.status, 9), []).append(n)
    return [n for rank in sorted(by_rank) for n in by_rank[rank]]


def _shapes(demand: Sequence[DemandItem]) -> list[tuple[tuple[tuple[str, float], ...], int]]:
    """The demand's bundles by shape, largest first."""
    shapes: dict[tuple[tuple[str, float], ...], int] = {}
    for item in demand:
        if item.count > 0:
            key = tuple(sorted(item.bundle.items()))
            shapes[key] = shapes.get(key, 0) + item.count
    return sorted(shapes.items(), key=lambda kv: _size(dict(kv[0])), reverse=True)


def _open_new(
    inp: SchedulingInput,
    leftover: list[tuple[dict[str, float], int]],
    existing: Counter[str],
    total: int,
) -> tuple[dict[str, int], list[DemandItem], int]:
    """New nodes for the bundles no existing node holds, the type that wastes least first,
    within the per-type and cluster-wide maximums: (launch by type, infeasible, unmet)."""
    types = inp.node_types
    per_type = {name: existing[name] for name in types}
    new_bins: list[_Bin] = []
    launch: dict[str, int] = {}
    infeasible: list[DemandItem] = []
    unmet = 0
    for bundle, wanted_count in leftover:
        count = _fill(new_bins, bundle, wanted_count)
        if count == 0:
            continue
        candidates = [name for name, t in types.items() if fits(bundle, t.resources)]
        if not candidates:
            infeasible.append(DemandItem(bundle=bundle, count=count))
            continue
        while count > 0:
            # Least waste first, then higher priority, then name for determinism.
            ranked = sorted(
                (
                    -_utilization(
                        types[name],
                        bundle,
                        min(count, _Bin(None, name, types[name].resources).capacity_for(bundle)),
                    ),
                    -types[name].priority,
                    name,
                )
                for name in candidates
                if name not in inp.unavailable_types and per_type[name] < types[name].max_workers
            )
            if not ranked or total >= inp.max_workers:
                unmet += count
                break
            name = ranked[0][2]
            t = types[name]
            per_node = _Bin(None, name, t.resources).capacity_for(bundle)
            wanted = math.ceil(count / per_node)
            room = min(t.max_workers - per_type[name], inp.max_workers - total)
            opened = min(wanted, room)
            for _ in range(opened):
                b = _Bin(None, name, t.resources)
                count = _fill([b], bundle, count)
                new_bins.append(b)
            launch[name] = launch.get(name, 0) + opened
            per_type[name] += opened
            total += opened
    return launch, infeasible, unmet


def _pace(
    launch: dict[str, int],
    nodes: Sequence[NodeView],
    types: Mapping[str, NodeTypeSpec],
    upscaling_speed: float,
) -> int:
    """Cut ``launch`` (in place) to what may start now, higher priority first; the nodes
    cut, a lower bound on the bundles deferred."""
    by_status = Counter(map(_STATUS, nodes))
    running = by_status[Status.READY]
    starting = sum(by_status[status] for status in STARTING)
    cap = max(MIN_PENDING_CAP, math.floor(upscaling_speed * max(1, running)))
    allowance = max(0, cap - starting)
    deferred = 0
    for name in sorted(launch, key=lambda n: (-types[n].priority, n)):
        granted = min(launch[name], allowance)
        deferred += launch[name] - granted
        launch[name] = granted
        allowance -= granted
    return deferred


def _scale_down(
    inp: SchedulingInput,
    nodes: Sequence[NodeView],
    busy: frozenset[str],
    existing: Counter[str],
) -> list[str]:
    """Idle nodes to drop, those that never became useful first: idle past the timeout
    (queued ones at once), or over a lowered maximum, never below min_workers."""
    types = inp.node_types
    drop: list[str] = []
    count_by_type = {name: existing[name] for name in types}
    idle = [n for n in nodes if n.node_id not in busy and n.status is not Status.REQUESTED]
    idle.sort(
        key=lambda n: (
            _DROP_ORDER.get(n.status, 9),
            n.idle_since if n.idle_since is not None else inp.now,
            n.node_id,
        )
    )
    for n in idle:
        if n.node_type not in types:
            drop.append(n.node_id)  # its type was removed from the config
            continue
        t = types[n.node_type]
        over_max = count_by_type[n.node_type] > t.max_workers
        idle_for = inp.now - (n.idle_since if n.idle_since is not None else inp.now)
        expired = n.status is Status.QUEUED or idle_for >= inp.idle_timeout_seconds
        if (over_max or expired) and count_by_type[n.node_type] > t.min_workers:
            drop.append(n.node_id)
            count_by_type[n.node_type] -= 1
    return drop
