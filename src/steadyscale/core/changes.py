"""What a config change does to live nodes: a pure plan, from the node types the ledger
knew at the daemon's last start (its snapshot), the live nodes with the node_config each
was launched with, and the node types configured now.

A node is *kept* while its type is configured with the node_config it was launched with
(resources, bounds and market may change: they describe, they do not rebuild). It is
*re-labelled* when its type was renamed: the type is gone and its node_config and resources
equal exactly one configured type the snapshot did not have. Otherwise it is *retiring*:
no new demand goes on it, and it is terminated only once replacement capacity of a
configured type holds its demand (make before break; the scheduler's rules), by what it
offers: the resources its type had when it was launched (the snapshot keeps them while it
lives, whatever the type offers now). Without a snapshot (a ledger from before snapshots
were kept) nothing is taken for a rename, and nodes of unknown types retire: the safe path.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

# A pool choice (spot or on-demand) the launcher adds, not part of the type's definition.
MARKET_OPTIONS = "InstanceMarketOptions"


class DefinesNodes(Protocol):
    """What defines a node type's nodes (the config's ``NodeType`` satisfies it)."""

    @property
    def node_config(self) -> Mapping[str, Any]: ...

    @property
    def resources(self) -> Mapping[str, float]: ...

    @property
    def market(self) -> str: ...


@dataclass(frozen=True)
class TypeDefinition:
    """One node type as the snapshot keeps it, with what its live nodes launched with an
    earlier node_config offer (they retire), by that node_config (canonical)."""

    node_config: Mapping[str, Any]
    resources: Mapping[str, float]
    market: str = "on-demand"
    earlier: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def same_nodes(self, other: DefinesNodes) -> bool:
        """Whether ``other`` launches the same nodes offering the same resources."""
        return canonical(self.node_config) == canonical(other.node_config) and dict(
            self.resources
        ) == dict(other.resources)

    def offer(self, launched: str) -> Mapping[str, float] | None:
        """What a node of this type launched with ``launched`` offers; None: unknown."""
        if launched == canonical(self.node_config):
            return self.resources
        return self.earlier.get(launched)


def canonical(node_config: Mapping[str, Any]) -> str:
    """One text per node_config, whatever the order of its keys: what is compared."""
    return json.dumps(node_config, sort_keys=True, default=str)


def definitions(node_types: Mapping[str, DefinesNodes]) -> dict[str, TypeDefinition]:
    return {
        name: TypeDefinition(dict(t.node_config), dict(t.resources), t.market)
        for name, t in node_types.items()
    }


def encode_snapshot(snapshot: Mapping[str, TypeDefinition]) -> str:
    return json.dumps(
        {
            name: {
                "node_config": dict(d.node_config),
                "resources": dict(d.resources),
                "market": d.market,
                **({"earlier": {k: dict(v) for k, v in d.earlier.items()}} if d.earlier else {}),
            }
            for name, d in snapshot.items()
        },
        sort_keys=True,
        default=str,
    )


def _amounts(raw: Mapping[Any, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in raw.items()}


def decode_snapshot(text: str | None) -> dict[str, TypeDefinition] | None:
    """The snapshot kept in the ledger; None when there is none, or none that reads (then
    nothing is taken for a rename, the safe path)."""
    if text is None:
        return None
    try:
        raw = json.loads(text)
        return {
            str(name): TypeDefinition(
                dict(entry["node_config"]),
                _amounts(entry["resources"]),
                str(entry.get("market", "on-demand")),
                {str(k): _amounts(v) for k, v in entry.get("earlier", {}).items()},
            )
            for name, entry in raw.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


# The key of a fleet request's stored spec (its CreateFleet, and the node_config its
# launch template was made from under ``node_config``).
FLEET_SPEC_KEY = "CreateFleet"


def launched_with(spec: str | None) -> str | None:
    """The canonical node_config a launch request was sent with, from its stored parameters
    (``requests.spec``) without the market options; None when they were not kept."""
    if spec is None:
        return None
    try:
        params = json.loads(spec)
    except ValueError:
        return None
    if isinstance(params, dict) and isinstance(params.get(FLEET_SPEC_KEY), dict):
        params = params[FLEET_SPEC_KEY].get("node_config")
    if not isinstance(params, dict):
        return None
    params.pop(MARKET_OPTIONS, None)
    return canonical(params)


@dataclass(frozen=True, slots=True)
class LiveNode:
    """A live node as the planner sees it."""

    node_id: str
    node_type: str
    launched_with: str | None = None  # canonical node_config of its launch; None: unknown


class Fate(StrEnum):
    KEPT = "kept"
    RELABELLED = "re-labelled"
    RETIRING = "retiring"


@dataclass(frozen=True, slots=True)
class NodeFate:
    fate: Fate
    node_type: str  # as the ledger names it now
    new_type: str  # as it is named once the change is applied (a rename's new name)
    reason: str = ""  # why it retires


@dataclass(frozen=True)
class ChangePlan:
    renames: Mapping[str, str]  # old type -> new type
    fates: Mapping[str, NodeFate]  # by node id
    snapshot: Mapping[str, TypeDefinition]  # what the ledger keeps once the plan is applied
    had_snapshot: bool  # False: a ledger from before snapshots; no rename is recognised
    # What a retiring node offers, by node id, where it is not what its type offers (it
    # was launched with an earlier node_config of a type whose resources changed too).
    offers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def retiring(self) -> dict[str, str]:
        """Node id -> why it retires."""
        return {n: f.reason for n, f in self.fates.items() if f.fate is Fate.RETIRING}

    def counts(self) -> Counter[Fate]:
        return Counter(f.fate for f in self.fates.values())

    def groups(self) -> list[tuple[NodeFate, int]]:
        """Node fates with how many nodes share each, kept first, then re-labelled, then
        retiring, by type."""
        order = list(Fate)
        tally = Counter(self.fates.values())
        return sorted(
            tally.items(),
            key=lambda kv: (order.index(kv[0].fate), kv[0].node_type, kv[0].new_type, kv[0].reason),
        )


def plan_changes(
    *,
    snapshot: Mapping[str, TypeDefinition] | None,
    nodes: Iterable[LiveNode],
    node_types: Mapping[str, DefinesNodes],
) -> ChangePlan:
    """The plan for ``nodes`` under ``node_types``, given the types the ledger knew."""
    known = snapshot or {}
    renames = _renames(known, node_types)
    current = {name: canonical(t.node_config) for name, t in node_types.items()}
    fates: dict[str, NodeFate] = {}
    offers: dict[str, Mapping[str, float]] = {}
    launches: dict[str, dict[str, Mapping[str, float]]] = {}  # type -> launched -> offer
    for node in nodes:
        old = node.node_type
        new = renames.get(old, old)
        launched = node.launched_with
        if launched is None and old in known:
            launched = canonical(known[old].node_config)
        fate = fates[node.node_id] = _fate(old, new, launched, node_types, current)
        if fate.fate is Fate.RETIRING and old in known and launched is not None:
            offer = known[old].offer(launched)
            if offer is not None:
                launches.setdefault(new, {})[launched] = offer
                by_type = node_types[new] if new in node_types else known[new]
                if offer != by_type.resources:
                    offers[node.node_id] = offer
    return ChangePlan(
        renames=renames,
        fates=fates,
        snapshot=_snapshot_after(known, node_types, fates.values(), launches),
        had_snapshot=snapshot is not None,
        offers=offers,
    )


def _fate(
    old: str,
    new: str,
    launched: str | None,
    node_types: Mapping[str, DefinesNodes],
    current: Mapping[str, str],
) -> NodeFate:
    """A node of type ``old`` (``new`` once renamed), launched with ``launched``."""
    if new not in node_types:
        return NodeFate(Fate.RETIRING, old, new, f"node type {old} was removed")
    if launched is not None and launched != current[new]:
        changed = _changed_keys(launched, node_types[new].node_config)
        return NodeFate(
            Fate.RETIRING, old, new, f"node type {new}'s node_config changed ({changed})"
        )
    if new != old:
        return NodeFate(Fate.RELABELLED, old, new)
    return NodeFate(Fate.KEPT, old, new)


def _renames(
    known: Mapping[str, TypeDefinition], node_types: Mapping[str, DefinesNodes]
) -> dict[str, str]:
    """Old type -> new type: a type gone from the config whose node_config and resources
    equal exactly one configured type the snapshot did not have."""
    gone = [name for name in known if name not in node_types]
    new = [name for name in node_types if name not in known]
    renames: dict[str, str] = {}
    for old in gone:
        matches = [name for name in new if known[old].same_nodes(node_types[name])]
        if len(matches) == 1:
            renames[old] = matches[0]
    return renames


def _snapshot_after(
    known: Mapping[str, TypeDefinition],
    node_types: Mapping[str, DefinesNodes],
    fates: Iterable[NodeFate],
    launches: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> dict[str, TypeDefinition]:
    """The configured types, and the removed ones whose nodes still retire, each with
    what its retiring nodes launched with another node_config offer: their resources
    place demand on those nodes, after a restart too."""
    snapshot = definitions(node_types)
    for fate in fates:
        if fate.new_type not in snapshot and fate.new_type in known:
            snapshot[fate.new_type] = replace(known[fate.new_type], earlier={})
    for name, offers in launches.items():
        definition = snapshot.get(name)
        if definition is not None:
            own = canonical(definition.node_config)
            earlier = {launched: o for launched, o in offers.items() if launched != own}
            snapshot[name] = replace(definition, earlier=earlier)
    return snapshot


def _changed_keys(launched: str, node_config: Mapping[str, Any]) -> str:
    before = json.loads(launched)
    after = json.loads(canonical(node_config))
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    return ", ".join(keys) or "its parameters"


@dataclass(frozen=True)
class Retiring:
    """What the loop keeps of a plan while its nodes retire, for the scheduler: why each
    retires (by node id), what a node of a removed type offers, ``max_surge`` resolved,
    and what a node offers where its type offers something else (by node id)."""

    reasons: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    max_surge: int = 1
    offers: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # ChangePlan's


NOT_RETIRING = Retiring()


def resolve_surge(max_surge: int | str, retiring: int) -> int:
    """Replacement nodes that may start at once: ``max_surge`` as a number, or as a
    percentage (``"25%"``) of the ``retiring`` nodes, rounded up; at least 1."""
    if isinstance(max_surge, str):
        share = float(max_surge.rstrip("%")) / 100.0
        return max(1, math.ceil(share * retiring - 1e-9))
    return max(1, max_surge)
