"""Pure scale-down: which idle nodes the scheduler drops, given where it packed the demand
and what the workload reports.

By default (``scale_down: packed``) a node the packing left without demand is idle, and
goes once idle past the idle timeout (queued ones at once), those that never became useful
first. With ``scale_down: reported`` the workload's reports choose instead: a node reported
idle is idle since its reports say so, the one idle longest goes first, and as many go as
the packing leaves without demand; packing decides only for the nodes nobody reports on.
Whatever the mode, a node reported busy within its TTL is never dropped (invariant I9),
and no type goes below its ``min_workers`` or below the nodes its demand needs.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from steadyscale.core.lifecycle import Status
from steadyscale.core.specs import NodeTypeSpec
from steadyscale.core.usage import Usage

# Preference when dropping idle nodes: ones that never became useful first.
_DROP_ORDER = {
    Status.QUEUED: 0,
    Status.LAUNCHED: 1,
    Status.PENDING: 2,
    Status.RUNNING: 3,
    Status.READY: 4,
}

_RANK = operator.itemgetter(0)


class Candidate(Protocol):
    """A node as the scheduler sees it (``scheduler.NodeView``)."""

    @property
    def node_id(self) -> str: ...

    @property
    def node_type(self) -> str: ...

    @property
    def status(self) -> Status: ...

    @property
    def idle_since(self) -> float | None: ...


class ScaleDown(NamedTuple):
    """What scale-down reads of the scheduling input."""

    node_types: Mapping[str, NodeTypeSpec]
    idle_timeout_seconds: float
    now: float
    usage: Usage


def scale_down(
    inp: ScaleDown,
    nodes: Sequence[Candidate],
    busy: frozenset[str],
    existing: Counter[str],
) -> list[str]:
    """Idle nodes to drop (see the module): idle past the timeout, or over a lowered
    maximum, never below min_workers, never one reported busy."""
    types = inp.node_types
    now = inp.now
    drop: list[str] = []
    count_by_type = {name: existing[name] for name in types}
    ranked = _candidates(inp, nodes, busy)
    floor = _floor(inp, nodes, busy)
    for _, idle_since, n in ranked:
        t = types[n.node_type]
        over_max = count_by_type[n.node_type] > t.max_workers
        idle_for = now - (idle_since if idle_since is not None else now)
        expired = n.status is Status.QUEUED or idle_for >= inp.idle_timeout_seconds
        if (over_max or expired) and count_by_type[n.node_type] > floor[n.node_type]:
            drop.append(n.node_id)
            count_by_type[n.node_type] -= 1
    return drop


Rank = tuple[int, int, int, float, str]


def _candidates(
    inp: ScaleDown, nodes: Sequence[Candidate], busy: frozenset[str]
) -> list[tuple[Rank, float | None, Candidate]]:
    """The nodes that may go, in the order they go, each with since when it is idle:
    those that never became useful first (queued, launched, pending), then nodes reported
    idle (of a ``reported`` type) longest idle first, then the running ones the packing
    left without demand."""
    reports = inp.usage.nodes
    reported_types = inp.usage.reported_types
    now = inp.now
    ranked: list[tuple[Rank, float | None, Candidate]] = []
    for n in nodes:
        if n.status is Status.REQUESTED:
            continue
        report = reports.get(n.node_id) if reports else None
        if report is not None and report.busy:
            continue  # I9: busy is kept
        order = _DROP_ORDER.get(n.status, 9)
        useful = int(order >= _DROP_ORDER[Status.RUNNING])
        if report is not None and n.node_type in reported_types:
            since = report.idle_since if report.idle_since is not None else now
            ranked.append(((useful, 0, order, since, n.node_id), since, n))
        elif n.node_id not in busy:
            since = n.idle_since if n.idle_since is not None else now
            ranked.append(((useful, 1, order, since, n.node_id), n.idle_since, n))
    ranked.sort(key=_RANK)
    return ranked


def _floor(
    inp: ScaleDown,
    nodes: Sequence[Candidate],
    busy: frozenset[str],
) -> dict[str, int]:
    """How many nodes of each type stay at least: its min_workers, and where a node
    that holds demand may go in its place (a ``reported`` type), the nodes that demand
    needs."""
    types = inp.node_types
    floor = {name: t.min_workers for name, t in types.items()}
    if not inp.usage.reported_types:
        return floor
    needed = Counter(n.node_type for n in nodes if n.node_id in busy)
    for name in inp.usage.reported_types & types.keys():
        floor[name] = max(floor[name], needed[name])
    return floor
