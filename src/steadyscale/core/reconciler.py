"""Pure reconciliation: records, demand and what EC2 showed in; moves and actions out.

Passive moves mirror what EC2 reports (launched -> pending -> running, interrupted,
terminated), by the rules of ``core.sightings``: an instance missing from a listing is
never taken for gone. Active decisions (launch, terminate, cancel) come from the
scheduler, which is told which nodes a config change retires. No clock is read and no
cloud is called here; the loop applies the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from steadyscale.core.changes import NOT_RETIRING, Retiring
from steadyscale.core.health import HealthVerdict
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import (
    ACTIVE,
    CLEAR,
    HAS_INSTANCE,
    UP,
    NodeRecord,
    NodeUpdate,
    Status,
)
from steadyscale.core.resources import DemandItem
from steadyscale.core.scheduler import Decision, NodeView, SchedulingInput, schedule
from steadyscale.core.sightings import (
    GONE_STATES,
    Move,
    Observation,
    observe,
    terminate_owed,
    unchanged,
)
from steadyscale.core.specs import ClusterSpec
from steadyscale.core.usage import NO_USAGE, Usage

_NOT_IDLE = NodeUpdate(idle_since=CLEAR)

__all__ = ["Actions", "Move", "Observation", "reconcile"]


@dataclass(frozen=True)
class Actions:
    moves: tuple[Move, ...] = ()
    launch: Mapping[str, int] = field(default_factory=dict)
    terminate: tuple[str, ...] = ()  # node ids: send TerminateInstances for them
    cancel: tuple[str, ...] = ()  # queued node ids to cancel
    adopt: tuple[CloudInstance, ...] = ()  # cluster instances of our requests, unknown ids
    strangers: tuple[CloudInstance, ...] = ()  # cluster instances no request explains
    # Instances of a former cluster name (carried over) the ledger does not know: left alone.
    unclaimed: tuple[CloudInstance, ...] = ()
    seen: tuple[str, ...] = ()  # node ids shown as they were: only last_seen_at changes
    decision: Decision = field(default_factory=Decision)
    unhealthy: Mapping[str, str] = field(default_factory=dict)  # node id -> why, terminated
    retired: Mapping[str, str] = field(default_factory=dict)  # retiring node id -> why it goes


@dataclass
class _Plan:
    """What one reconcile has decided so far, pass after pass."""

    moves: list[Move] = field(default_factory=list)  # in the order they apply
    status_after: dict[str, Status] = field(default_factory=dict)  # by node id
    seen: list[str] = field(default_factory=list)  # node ids shown as they were
    owed: list[str] = field(default_factory=list)  # node ids a terminate is still owed for
    unhealthy: dict[str, str] = field(default_factory=dict)  # node id -> why it is replaced


def reconcile(
    *,
    now: float,
    config: ClusterSpec,
    records: Sequence[NodeRecord],
    demand: Sequence[DemandItem],
    observation: Observation | None,
    open_request_ids: frozenset[str] = frozenset(),
    unavailable_types: frozenset[str] = frozenset(),
    known_instance_ids: frozenset[str] = frozenset(),
    health: Mapping[str, HealthVerdict] | None = None,
    retiring: Retiring = NOT_RETIRING,
    former_names: frozenset[str] = frozenset(),
    usage: Usage = NO_USAGE,
) -> Actions:
    plan = _Plan()
    _mirror(plan, records, observation, now, config)
    _check_readiness(plan, records, config, health or {})
    adopt, strangers, unclaimed = _unknown(
        records, observation, config, open_request_ids, known_instance_ids, former=former_names
    )

    # Active: what the demand needs.
    views, decision = _schedule(
        plan,
        records,
        config=config,
        now=now,
        demand=demand,
        unavailable_types=unavailable_types,
        retiring=retiring,
        usage=usage,
    )
    dropped = set(decision.drop)
    chosen = [v for v in views if v.node_id in dropped] if dropped else []
    cancel = tuple(v.node_id for v in chosen if v.status is Status.QUEUED)
    terminate = [*plan.unhealthy, *(v.node_id for v in chosen if v.status is not Status.QUEUED)]
    _track_idle(plan.moves, views, decision.busy, dropped, now)
    terminate.extend(plan.owed)

    return Actions(
        moves=tuple(plan.moves),
        launch=dict(decision.launch),
        terminate=tuple(dict.fromkeys(terminate)),
        cancel=cancel,
        adopt=tuple(adopt),
        strangers=tuple(strangers),
        unclaimed=tuple(unclaimed),
        seen=tuple(plan.seen),
        decision=decision,
        unhealthy=plan.unhealthy,
        retired=_retired(chosen, retiring, config),
    )


def _schedule(
    plan: _Plan,
    records: Sequence[NodeRecord],
    *,
    config: ClusterSpec,
    now: float,
    demand: Sequence[DemandItem],
    unavailable_types: frozenset[str],
    retiring: Retiring,
    usage: Usage,
) -> tuple[list[NodeView], Decision]:
    """The scheduler's view of the active nodes as this reconcile leaves them, and its
    decision."""
    status_after = plan.status_after
    reasons = retiring.reasons
    views = [
        NodeView(
            r.node_id,
            r.node_type,
            status_after[r.node_id],
            r.created_at,
            r.idle_since,
            r.node_id in reasons,
        )
        for r in records
        if status_after[r.node_id] in ACTIVE
    ]
    decision = schedule(
        SchedulingInput(
            node_types=config.available_node_types,
            max_workers=config.max_workers,
            upscaling_speed=config.upscaling_speed,
            idle_timeout_seconds=config.idle_timeout_seconds,
            now=now,
            demand=demand,
            nodes=views,
            unavailable_types=unavailable_types,
            retired_resources=retiring.resources,
            max_surge=retiring.max_surge,
            retiring_offers=retiring.offers,
            usage=usage,
        )
    )
    return views, decision


def _retired(chosen: Sequence[NodeView], retiring: Retiring, config: ClusterSpec) -> dict[str, str]:
    """Why each retiring node dropped now is terminated (through its drain: see
    ``loop.drain``)."""
    types = config.available_node_types
    reasons: dict[str, str] = {}
    for view in chosen:
        if view.status is Status.QUEUED or not (view.retiring or view.node_type not in types):
            continue
        why = retiring.reasons.get(view.node_id) or f"node type {view.node_type} was removed"
        # Busy at the last tick (not idle): its demand moved onto the ready replacements.
        held = "its demand is on ready replacements" if view.idle_since is None else "no demand"
        reasons[view.node_id] = f"retired: {why}; {held}"
    return reasons


def _mirror(
    plan: _Plan,
    records: Sequence[NodeRecord],
    observation: Observation | None,
    now: float,
    config: ClusterSpec,
) -> None:
    """Passive: mirror what EC2 showed, and note the terminates still owed."""
    moves, status_after = plan.moves, plan.status_after
    seen_as_before, owed = plan.seen, plan.owed
    for record in records:
        new_status = record.status
        if observation is not None and record.instance_id and record.status in HAS_INSTANCE:
            shown = observation.instances.get(record.instance_id)
            if shown is not None and unchanged(record, shown):
                seen_as_before.append(record.node_id)
            else:
                move = observe(record, shown, now, config, observation.listing_complete)
                if move is not None:
                    moves.append(move)
                    new_status = move.status or new_status
        status_after[record.node_id] = new_status
        if new_status not in ACTIVE and terminate_owed(record, new_status, observation, now):
            owed.append(record.node_id)


def _check_readiness(
    plan: _Plan,
    records: Sequence[NodeRecord],
    config: ClusterSpec,
    verdicts: Mapping[str, HealthVerdict],
) -> None:
    """A running node is ready once it passes its node type's health check, at once when
    the type has none; one failing past its threshold is terminated (and leaves the
    scheduler's view now, so its replacement is launched this tick)."""
    moves, status_after = plan.moves, plan.status_after
    checks = {name: t.health_check for name, t in config.available_node_types.items()}
    for record in records:
        status = status_after[record.node_id]
        if status not in UP:
            continue
        check = checks.get(record.node_type)
        if check is None:
            if status is Status.RUNNING:
                moves.append(
                    Move(record.node_id, Status.READY, "running; its node type has no health check")
                )
                status_after[record.node_id] = Status.READY
            continue
        verdict = verdicts.get(record.node_id)
        if verdict is None:
            continue
        if verdict.failing:
            plan.unhealthy[record.node_id] = (
                f"failed {verdict.failures} health checks in a row "
                f"({_describe_check(check.port, check.path)}); replacing it"
            )
            status_after[record.node_id] = Status.TERMINATING
        elif status is Status.RUNNING and verdict.passed:
            moves.append(
                Move(
                    record.node_id,
                    Status.READY,
                    f"passed its health check ({_describe_check(check.port, check.path)})",
                )
            )
            status_after[record.node_id] = Status.READY


def _unknown(
    records: Sequence[NodeRecord],
    observation: Observation | None,
    config: ClusterSpec,
    open_request_ids: frozenset[str],
    known_instance_ids: frozenset[str],
    *,
    former: frozenset[str],
) -> tuple[list[CloudInstance], list[CloudInstance], list[CloudInstance]]:
    """Instances no record knows, of this cluster or of a name it was carried over from:
    those of our open requests (to adopt, under either name), this cluster's strangers,
    and a former name's others, left alone (unclaimed): the ledger cannot explain them,
    and that name is another cluster's business now."""
    adopt: list[CloudInstance] = []
    strangers: list[CloudInstance] = []
    unclaimed: list[CloudInstance] = []
    by_instance = {r.instance_id: r for r in records if r.instance_id}
    # Usually every shown id is ours: a set difference (in C) says so without a loop.
    if observation is None or not (
        observation.instances.keys() - by_instance.keys() - known_instance_ids
    ):
        return adopt, strangers, unclaimed
    for instance_id, seen in observation.instances.items():
        if instance_id in by_instance or instance_id in known_instance_ids:
            continue
        ours = seen.tags.get(TAG_CLUSTER) == config.cluster_name
        if seen.state == "terminated" or not (ours or seen.tags.get(TAG_CLUSTER) in former):
            continue
        if seen.tags.get(TAG_REQUEST) in open_request_ids:
            adopt.append(seen)
        elif ours:
            strangers.append(seen)
        elif seen.state not in GONE_STATES:
            unclaimed.append(seen)
    return adopt, strangers, unclaimed


def _track_idle(
    moves: list[Move],
    views: Sequence[NodeView],
    busy: frozenset[str],
    dropped: set[str],
    now: float,
) -> None:
    """Idle bookkeeping for the next tick's scale-down: a node no demand is placed on is
    idle from now; one that gets demand again is not idle any more."""
    idle_now = NodeUpdate(idle_since=now)  # frozen: one for every node idle from now
    for view in views:
        node_id = view.node_id
        if node_id in busy:
            if view.idle_since is not None and node_id not in dropped:
                moves.append(Move(node_id, None, "", _NOT_IDLE))
        elif view.idle_since is None and node_id not in dropped:
            moves.append(Move(node_id, None, "", idle_now))


def _describe_check(port: int, path: str | None) -> str:
    return f"GET :{port}{path}" if path is not None else f"TCP :{port}"
