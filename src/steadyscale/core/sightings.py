"""What one sighting tells about a node, pure: EC2 showed an instance (or did not), and the
node moves forward along its lifecycle, or only notes when it was seen.

A stale read never moves a node backwards; an instance missing from a listing is never
taken for gone: it only becomes LOST after the visibility timeout, and is then terminated
by id until EC2 confirms. The reconciler applies these rules to every node each tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from steadyscale.core.instances import CloudInstance
from steadyscale.core.lifecycle import CLEAR, NO_UPDATE, UP, NodeRecord, NodeUpdate, Status
from steadyscale.core.specs import ClusterSpec

# Re-send a terminate EC2 accepted if the instance still is not terminated after this long.
TERMINATE_RESEND_SECONDS = 300.0
GONE_STATES = frozenset({"shutting-down", "terminated"})
_STOPPED_STATES = frozenset({"stopping", "stopped"})
# Statuses a sighting may move on from, by what EC2 shows.
_MAY_SHOW_PENDING = frozenset({Status.LAUNCHED, Status.LOST})
_MAY_SHOW_RUNNING = frozenset({Status.LAUNCHED, Status.PENDING, Status.LOST})
_ENDING = frozenset({Status.TERMINATING, Status.INTERRUPTED})
_MAY_BE_INTERRUPTED = frozenset({Status.LAUNCHED, Status.PENDING, *UP, Status.DRAINING})
# Statuses a complete listing shows: missing from one starts the clock toward LOST.
_LISTED = frozenset({Status.PENDING, *UP, Status.DRAINING})


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


def unchanged(record: NodeRecord, seen: CloudInstance) -> bool:
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


def observe(
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
    elif (state in GONE_STATES or state in _STOPPED_STATES) and status in _MAY_BE_INTERRUPTED:
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


def terminate_owed(
    record: NodeRecord, status: Status, observation: Observation | None, now: float
) -> bool:
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
