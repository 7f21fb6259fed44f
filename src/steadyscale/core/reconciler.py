"""Pure reconciliation: records, demand and what EC2 showed in; moves and actions out.

Passive moves mirror what EC2 reports (launched -> pending -> running, interrupted,
terminated). An instance missing from a listing is never taken for gone: it only becomes
LOST after the visibility timeout, and is then terminated by id until EC2 confirms.
Active decisions (launch, terminate, cancel) come from the scheduler. No clock is read and
no cloud is called here; the loop applies the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from steadyscale.core.health import HealthVerdict
from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import (
    ACTIVE,
    CLEAR,
    HAS_INSTANCE,
    NO_UPDATE,
    UP,
    NodeRecord,
    NodeUpdate,
    Status,
)
from steadyscale.core.resources import DemandItem
from steadyscale.core.scheduler import Decision, NodeView, SchedulingInput, schedule
from steadyscale.core.specs import ClusterSpec

# Re-send a terminate EC2 accepted if the instance still is not terminated after this long.
TERMINATE_RESEND_SECONDS = 300.0
_GONE_STATES = frozenset({"shutting-down", "terminated"})
_STOPPED_STATES = frozenset({"stopping", "stopped"})
# Statuses a sighting may move on from, by what EC2 shows.
_MAY_SHOW_PENDING = frozenset({Status.LAUNCHED, Status.LOST})
_MAY_SHOW_RUNNING = frozenset({Status.LAUNCHED, Status.PENDING, Status.LOST})
_ENDING = frozenset({Status.TERMINATING, Status.INTERRUPTED})
_MAY_BE_INTERRUPTED = frozenset({Status.LAUNCHED, Status.PENDING, *UP})
# Statuses a complete listing shows: missing from one starts the clock toward LOST.
_LISTED = frozenset({Status.PENDING, *UP})
_NOT_IDLE = NodeUpdate(idle_since=CLEAR)


@dataclass(frozen=True)
class Observation:
    """What EC2 showed this tick: the cluster listing plus by-id lookups, merged."""

    instances: Mapping[str, CloudInstance]
    listing_complete: bool  # the cluster listing succeeded (all pages)


@dataclass(frozen=True)
class Move:
    node_id: str
    status: Status | None  # None: only ``update``
    reason: str = ""
    update: NodeUpdate = NO_UPDATE


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


def _unchanged(record: NodeRecord, seen: CloudInstance) -> bool:
    """Shown running as recorded, nothing new: the sighting is all there is to note (the
    common case at scale, kept free of a Move per node)."""
    return (
        record.status in UP
        and seen.state == "running"
        and record.missing_since is None
        and record.first_seen_at is not None
        and bool(record.private_ip or not seen.private_ip)
        and bool(record.availability_zone or not seen.availability_zone)
    )


def _observe(
    record: NodeRecord,
    seen: CloudInstance | None,
    now: float,
    config: ClusterSpec,
    listing_complete: bool,
) -> Move | None:
    if seen is None:
        return _unseen(record, now, config.visibility_timeout_seconds, listing_complete)
    status = record.status
    state = seen.state
    new: Status | None = None
    reason = ""
    if state == "pending" and status in _MAY_SHOW_PENDING:
        new, reason = Status.PENDING, "EC2 shows it pending"
    elif state == "running" and status in _MAY_SHOW_RUNNING:
        new, reason = Status.RUNNING, "EC2 shows it running"
    elif state == "terminated" and status in _ENDING:
        new, reason = Status.TERMINATED, "EC2 shows it terminated"
    elif (state in _GONE_STATES or state in _STOPPED_STATES) and status in _MAY_BE_INTERRUPTED:
        new = Status.INTERRUPTED
        reason = f"EC2 shows it {state} without our request ({seen.state_reason or state})"
    # Anything else (a stale read showing an older state, say) changes nothing but what the
    # sighting itself tells.
    return Move(
        record.node_id,
        new,
        reason,
        NodeUpdate(
            last_seen_at=now,
            missing_since=CLEAR if record.missing_since is not None else None,
            first_seen_at=now if record.first_seen_at is None else None,
            private_ip=seen.private_ip if seen.private_ip and not record.private_ip else None,
            availability_zone=(
                seen.availability_zone
                if seen.availability_zone and not record.availability_zone
                else None
            ),
            running_at=now if new is Status.RUNNING else None,
        ),
    )


def _unseen(record: NodeRecord, now: float, timeout: float, listing_complete: bool) -> Move | None:
    """A node EC2 did not show: LOST only past the visibility timeout, never at once."""
    status = record.status
    if (
        status is Status.LAUNCHED
        and record.launched_at is not None
        and (now - record.launched_at > timeout)
    ):
        return Move(
            record.node_id,
            Status.LOST,
            f"not shown by EC2 for {now - record.launched_at:.0f}s after launch",
        )
    if status in _LISTED and listing_complete:
        # Missing from a complete listing (and from the lookups the loop made for it):
        # count from the first such tick, never from the last sighting, so a gap in
        # observation (a restart, a throttled spell) is not mistaken for absence.
        if record.missing_since is None:
            return Move(record.node_id, None, "", NodeUpdate(missing_since=now))
        if now - record.missing_since > timeout:
            return Move(
                record.node_id,
                Status.LOST,
                f"missing from every listing and lookup for {now - record.missing_since:.0f}s",
            )
    return None


def _owed(record: NodeRecord, status: Status, observation: Observation | None, now: float) -> bool:
    """Whether a terminate is still owed: LOST nodes, and terminates EC2 has not accepted
    (or done)."""
    if status is Status.LOST or (
        status is Status.TERMINATING
        and (
            record.terminate_accepted_at is None
            or now - record.terminate_accepted_at > TERMINATE_RESEND_SECONDS
        )
    ):
        return True
    if status is Status.INTERRUPTED and record.instance_id and observation is not None:
        shown = observation.instances.get(record.instance_id)
        # Stopped rather than gone, or no longer shown at all (EC2 drops terminated
        # instances after a while): terminate by id until EC2 confirms.
        return shown is None or shown.state in _STOPPED_STATES
    return False


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
    former_names: frozenset[str] = frozenset(),
) -> Actions:
    plan = _Plan()
    _mirror(plan, records, observation, now, config)
    _check_readiness(plan, records, config, health or {})
    adopt, strangers, unclaimed = _unknown(
        records, observation, config, open_request_ids, known_instance_ids, former=former_names
    )

    # Active: what the demand needs.
    status_after = plan.status_after
    views = [
        NodeView(r.node_id, r.node_type, status_after[r.node_id], r.created_at, r.idle_since)
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
        )
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
    )


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
            if shown is not None and _unchanged(record, shown):
                seen_as_before.append(record.node_id)
            else:
                move = _observe(record, shown, now, config, observation.listing_complete)
                if move is not None:
                    moves.append(move)
                    new_status = move.status or new_status
        status_after[record.node_id] = new_status
        if new_status not in ACTIVE and _owed(record, new_status, observation, now):
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
        elif seen.state not in _GONE_STATES:
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
