"""Pure scheduling: demand and current nodes in, node types to launch and nodes to drop out.

Demand is resource bundles (``{CPU: 4, GPU: 1}`` x count). Bundles are first packed onto
nodes that exist or are on their way (running first), the rest bin-packed into new nodes
of the type that wastes least (ties: higher ``priority``). Per-type and cluster-wide
maximums, ``min_workers`` and ``upscaling_speed`` bound the result; nodes idle past the
idle timeout are dropped, never below ``min_workers``.

*Retiring* nodes (a config change removed or changed their type: ``core.changes``) are
left out of all that: no new demand is placed on them and launches are computed without
them. They hold only the demand that ready nodes of configured types cannot hold yet (so
they go once their replacements are ready: make before break), and a configured type's
``min_workers`` until its replacements are ready; the others are dropped at once.
``max_surge`` bounds the replacements starting beyond what the demand needs. No clock, no
cloud: the caller passes ``now`` and the snapshot.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from steadyscale.core.lifecycle import STARTING, Status
from steadyscale.core.packing import (
    Bin,
    Shape,
    fill,
    fill_all,
    placed,
    shape_key,
    shapes,
    utilization,
)
from steadyscale.core.resources import DemandItem, fits
from steadyscale.core.scaledown import ScaleDown, scale_down
from steadyscale.core.specs import NodeTypeSpec
from steadyscale.core.usage import NO_USAGE, Usage

# Preference when placing demand on existing nodes: usable ones first.
_PLACEMENT_ORDER = {
    Status.READY: 0,
    Status.RUNNING: 1,
    Status.PENDING: 2,
    Status.LAUNCHED: 3,
    Status.REQUESTED: 4,
    Status.QUEUED: 5,
}
MIN_PENDING_CAP = 5
_AGE_AND_ID = operator.itemgetter(3, 0)  # NodeView's created_at, node_id
_NODE_TYPE = operator.itemgetter(1)
_STATUS = operator.itemgetter(2)
_RETIRING = operator.itemgetter(5)

Leftover = list[tuple[dict[str, float], int]]  # bundles by shape that no node holds


class NodeView(NamedTuple):
    """A node as the scheduler sees it; a named tuple, cheap to build by the ten thousand."""

    node_id: str
    node_type: str
    status: Status
    created_at: float
    idle_since: float | None = None
    retiring: bool = False  # a config change replaces it (a type unknown to the config too)


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
    # What one node of a type the config no longer has offers: its retiring nodes hold
    # demand by it (a node of a type in neither is taken to hold anything).
    retired_resources: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Replacement nodes that may start at once beyond what the demand needs, while
    # retiring nodes still hold demand.
    max_surge: int = 1
    # What a retiring node offers, by node id, where its type offers something else (it
    # was launched with an earlier node_config of a type whose resources changed too).
    retiring_offers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # What the workload reports of its nodes (``core.scaledown``): none by default.
    usage: Usage = NO_USAGE


@dataclass(frozen=True)
class Decision:
    launch: dict[str, int] = field(default_factory=dict)
    drop: tuple[str, ...] = ()  # node ids to cancel (queued) or terminate
    busy: frozenset[str] = frozenset()  # node ids some demand is placed on
    infeasible: tuple[DemandItem, ...] = ()  # bundles no node type can ever fit
    unmet: int = 0  # bundles left without a node because of limits or pacing


def schedule(inp: SchedulingInput) -> Decision:
    types = inp.node_types
    nodes = _by_placement(inp.nodes)
    offers = {name: t.resources for name, t in types.items()}
    staying, retiring, existing = _split(nodes, offers)
    bins = [Bin(n.node_id, n.node_type, offers[n.node_type]) for n in staying]
    demand = shapes(inp.demand)

    # 1. Pack demand onto nodes that exist or are on their way (retiring ones aside).
    leftover = fill_all(bins, demand)

    # 2. Bin-pack the rest into new nodes.
    launch, infeasible, held_back = _open_new(inp, leftover, existing, len(staying))
    unmet = sum(count for _, count in held_back)
    wanted = dict(launch)

    # 3. Pace: at most max(5, upscaling_speed x max(1, ready)) nodes starting at once.
    unmet += _pace(launch, nodes, types, inp.upscaling_speed)
    launch = {name: n for name, n in launch.items() if n > 0}

    # 4. min_workers are kept whatever the pacing.
    _top_up(launch, types, existing)

    busy = frozenset(b.node_id for b in bins if b.used and b.node_id is not None)

    # 5. Scale down idle nodes, never below min_workers; honour lowered maximums.
    down = ScaleDown(types, inp.idle_timeout_seconds, inp.now, inp.usage)
    drop = scale_down(down, staying, busy, existing)

    # 6. Retiring nodes keep what ready nodes cannot hold yet; the surge bounds launches.
    if retiring:
        _top_up(wanted, types, existing)
        stuck = [(item.bundle, item.count) for item in infeasible] + held_back
        outcome = _retire(inp, staying, retiring, demand, stuck)
        busy |= outcome.held
        drop.extend(outcome.drop)
        _surge(launch, types, sum(wanted.values()) + inp.max_surge - outcome.replaced)
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


def _split(
    nodes: list[NodeView], offers: Mapping[str, Mapping[str, float]]
) -> tuple[list[NodeView], list[NodeView], Counter[str]]:
    """(staying nodes, retiring ones, staying nodes by type), each list in placement
    order. A node of a type the config does not have retires, flagged or not."""
    by_type = Counter(map(_NODE_TYPE, nodes))
    if by_type.keys() <= offers.keys() and not any(map(_RETIRING, nodes)):
        return nodes, [], by_type  # the common case: one pass in C, no split
    staying: list[NodeView] = []
    retiring: list[NodeView] = []
    for n in nodes:
        (retiring if n.retiring or n.node_type not in offers else staying).append(n)
    return staying, retiring, Counter(map(_NODE_TYPE, staying))


def _top_up(
    launch: dict[str, int], types: Mapping[str, NodeTypeSpec], existing: Counter[str]
) -> None:
    """Launch (in place) what each type's min_workers still needs."""
    for name, t in types.items():
        have = existing[name] + launch.get(name, 0)
        if have < t.min_workers:
            launch[name] = launch.get(name, 0) + (t.min_workers - have)


def _open_new(
    inp: SchedulingInput,
    leftover: Leftover,
    existing: Counter[str],
    total: int,
) -> tuple[dict[str, int], list[DemandItem], Leftover]:
    """New nodes for the bundles no existing node holds, the type that wastes least first,
    within the per-type and cluster-wide maximums: (launch by type, infeasible, held back
    by limits)."""
    types = inp.node_types
    per_type = {name: existing[name] for name in types}
    new_bins: list[Bin] = []
    launch: dict[str, int] = {}
    infeasible: list[DemandItem] = []
    held_back: Leftover = []
    for bundle, wanted_count in leftover:
        count = fill(new_bins, bundle, wanted_count)
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
                    -utilization(
                        types[name].resources,
                        bundle,
                        min(count, Bin(None, name, types[name].resources).capacity_for(bundle)),
                    ),
                    -types[name].priority,
                    name,
                )
                for name in candidates
                if name not in inp.unavailable_types and per_type[name] < types[name].max_workers
            )
            if not ranked or total >= inp.max_workers:
                held_back.append((bundle, count))
                break
            name = ranked[0][2]
            t = types[name]
            per_node = Bin(None, name, t.resources).capacity_for(bundle)
            wanted = math.ceil(count / per_node)
            room = min(t.max_workers - per_type[name], inp.max_workers - total)
            opened = min(wanted, room)
            for _ in range(opened):
                b = Bin(None, name, t.resources)
                count = fill([b], bundle, count)
                new_bins.append(b)
            launch[name] = launch.get(name, 0) + opened
            per_type[name] += opened
            total += opened
    return launch, infeasible, held_back


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


class _Retired(NamedTuple):
    held: frozenset[str]  # retiring nodes demand stays on
    drop: list[str]  # retiring nodes to drop now
    # New nodes that replace the retiring nodes kept (what their demand takes, one per node
    # kept for min_workers): they count against the surge, in new nodes, so that a type
    # holding more (or less) per node than the retiring nodes is rolled out all the same.
    replaced: int


def _retire(
    inp: SchedulingInput,
    staying: list[NodeView],
    retiring: list[NodeView],
    demand: Sequence[Shape],
    stuck: Leftover,
) -> _Retired:
    """Retiring nodes hold the demand that READY staying nodes cannot hold yet, ready ones
    first; the others go at once, but for those a configured type's min_workers needs
    until its replacements are ready. ``stuck`` is demand no configured type takes
    (infeasible, or held back by limits): the nodes under it are not being replaced."""
    types = inp.node_types
    offers = {**inp.retired_resources, **{name: t.resources for name, t in types.items()}}
    ready = [n for n in staying if n.status is Status.READY]
    rest = fill_all([Bin(n.node_id, n.node_type, offers[n.node_type]) for n in ready], demand)
    held, moved = _hold(inp, retiring, offers, rest, stuck)
    replacing, _, _ = _open_new(inp, moved, Counter(), 0)
    ready_of_type = Counter(map(_NODE_TYPE, ready))
    held_of_type = Counter(n.node_type for n in retiring if n.node_id in held)
    short = {n: t.min_workers - ready_of_type[n] - held_of_type[n] for n, t in types.items()}
    drop: list[str] = []
    for_min: Counter[str] = Counter()
    for n in retiring:  # in placement order: the readiest are kept for min_workers
        if n.node_id in held or n.status is Status.REQUESTED:
            continue
        if inp.usage.busy(n.node_id):  # I9: its workload still runs on it
            held.add(n.node_id)
            continue
        if short.get(n.node_type, 0) > 0:
            short[n.node_type] -= 1
            for_min[n.node_type] += 1
            continue
        drop.append(n.node_id)
    # A new node of a type counts toward its min_workers too: one that takes over demand
    # also replaces a node kept for them.
    replaced = sum(max(replacing.get(t, 0), for_min[t]) for t in {*replacing, *for_min})
    return _Retired(frozenset(held), drop, replaced)


def _hold(
    inp: SchedulingInput,
    retiring: list[NodeView],
    offers: Mapping[str, Mapping[str, float]],
    rest: Leftover,
    stuck: Leftover,
) -> tuple[set[str], Leftover]:
    """The retiring nodes that hold ``rest`` (what ready nodes cannot hold), ``stuck``
    demand first; and the demand new nodes are to take over from them."""
    # A queued node is nothing yet: it holds nothing, and goes.
    holders = [n for n in retiring if n.status is not Status.QUEUED]
    own = inp.retiring_offers
    bins = [
        # A node with an offer of its own is its own kind: no type's room is shared with it.
        Bin(n.node_id, n.node_id, own[n.node_id])
        if n.node_id in own
        else Bin(n.node_id, n.node_type, offers[n.node_type])
        for n in holders
        if n.node_id in own or n.node_type in offers
    ]
    # The stuck demand first, so that the nodes it keeps are told apart.
    rest_by_shape = {shape_key(bundle): count for bundle, count in rest}
    first: list[Shape] = []
    for bundle, count in stuck:
        key = shape_key(bundle)
        k = min(count, rest_by_shape.get(key, 0))
        if k:
            first.append((key, k))
            rest_by_shape[key] -= k
    stuck_left = fill_all(bins, first)
    kept = [b for b in bins if b.used]
    others = [b for b in bins if not b.used]
    # The rest goes first where stuck demand keeps a node anyway, then onto the others:
    # theirs is the demand new nodes are to take over.
    movable = fill_all(kept, [(key, n) for key, n in rest_by_shape.items() if n > 0])
    left = fill_all(others, [(shape_key(bundle), n) for bundle, n in movable])
    held = {b.node_id for b in bins if b.used and b.node_id is not None}
    if left or stuck_left:
        # Nodes of a type whose resources are unknown may hold what no other node does.
        opaque = {n.node_id for n in holders if n.node_type not in offers and n.node_id not in own}
        held |= opaque
    return held, placed(movable, left)


def _surge(launch: dict[str, int], types: Mapping[str, NodeTypeSpec], cap: int) -> None:
    """Cut ``launch`` (in place, lowest priority first) to ``cap`` nodes: what the demand
    needs plus ``max_surge``, less the new nodes that replace retiring nodes still kept."""
    excess = sum(launch.values()) - max(0, cap)
    for name in sorted(launch, key=lambda n: (types[n].priority, n)):
        if excess <= 0:
            break
        cut = min(launch[name], excess)
        launch[name] -= cut
        excess -= cut
    for name in [name for name, n in launch.items() if n == 0]:
        del launch[name]
