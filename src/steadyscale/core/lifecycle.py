"""The life of a node: one status enum, one table of allowed moves, a history per node.

A node record exists from the moment the autoscaler decides to launch it (QUEUED), long
before EC2 has an id for it, until EC2 confirms it terminated. Every move goes through
``NodeRecord.move``, which refuses an illegal one or one whose record lacks what the new
status needs, applies the move's ``NodeUpdate`` and appends (status, time, reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final

log = logging.getLogger("steadyscale.lifecycle")


class Status(StrEnum):
    QUEUED = "queued"
    REQUESTED = "requested"
    LAUNCHED = "launched"
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
    DRAINING = "draining"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    LAUNCH_FAILED = "launch_failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    LOST = "lost"


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # Decided; the intent is durable, nothing sent yet.
    S.QUEUED: frozenset(
        {
            S.REQUESTED,  # RunInstances about to be sent; its ClientToken is now fixed
            S.CANCELLED,  # demand went away before we sent anything
        }
    ),
    S.REQUESTED: frozenset(
        {
            S.LAUNCHED,  # RunInstances answered with this node's instance id
            S.LAUNCH_FAILED,  # EC2 refused (capacity, limits) or launched fewer than asked
        }
    ),
    # Id known from the RunInstances answer; EC2 may not show it yet.
    S.LAUNCHED: frozenset(
        {
            S.PENDING,  # seen pending
            S.RUNNING,  # seen running (its pending phase was missed)
            S.TERMINATING,  # not needed any more; terminated by id even while invisible
            S.INTERRUPTED,  # seen shutting down / terminated without our asking
            S.LOST,  # never seen for longer than the visibility timeout
        }
    ),
    S.PENDING: frozenset({S.RUNNING, S.TERMINATING, S.INTERRUPTED, S.LOST}),
    # Running in EC2; not usable until it passes its node type's health check.
    S.RUNNING: frozenset(
        {
            S.READY,  # passed its health check, or its node type has none (at once)
            S.TERMINATING,  # not needed any more, or failed its health check too often
            S.DRAINING,  # to be terminated, once its workload has let it go
            S.INTERRUPTED,
            S.LOST,
        }
    ),
    # Usable: demand is placed on it first.
    S.READY: frozenset(
        {
            S.TERMINATING,  # idle past the idle timeout, or failing its health check
            S.DRAINING,  # to be terminated, once its workload has let it go
            S.INTERRUPTED,  # EC2 shows it going away without our asking
            S.LOST,  # missing from every listing and lookup past the visibility timeout
        }
    ),
    # Asked to let go of its work before it is terminated (or before EC2 reclaims it): no
    # demand is placed on it and it is never chosen for scale-down again.
    S.DRAINING: frozenset(
        {
            S.TERMINATING,  # drained: the workload acked, the hook succeeded, or time ran out
            S.INTERRUPTED,  # EC2 took it away meanwhile (a reclaim it was warned of)
            S.LOST,  # missing from every listing and lookup past the visibility timeout
        }
    ),
    S.TERMINATING: frozenset(
        {
            S.TERMINATED,  # EC2 shows it terminated, or no longer knows the id
        }
    ),
    S.INTERRUPTED: frozenset(
        {
            S.TERMINATED,  # EC2 finished what it started
            S.TERMINATING,  # we terminate it ourselves (it stopped instead, say)
        }
    ),
    S.LOST: frozenset(
        {
            S.TERMINATING,  # terminated by id, idempotently, until EC2 confirms
            S.PENDING,  # it was only late: visible after all
            S.RUNNING,  # (and must pass its health check again to be ready)
        }
    ),
    S.TERMINATED: frozenset(),
    S.LAUNCH_FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL = frozenset({S.TERMINATED, S.LAUNCH_FAILED, S.CANCELLED})
# Nodes that exist, or are about to, and count toward capacity and limits.
ACTIVE = frozenset({S.QUEUED, S.REQUESTED, S.LAUNCHED, S.PENDING, S.RUNNING, S.READY})
# Not yet usable: counted against upscaling_speed.
STARTING = frozenset({S.QUEUED, S.REQUESTED, S.LAUNCHED, S.PENDING, S.RUNNING})
# Running in EC2 (ready or not).
UP = frozenset({S.RUNNING, S.READY})
# Has an instance id that EC2 may still be running.
HAS_INSTANCE = frozenset(
    {S.LAUNCHED, S.PENDING, S.RUNNING, S.READY, S.DRAINING, S.TERMINATING, S.INTERRUPTED, S.LOST}
)

# What a record carries in each status, set by the move into it at the latest: a move that
# would leave one unset is refused. Every status with an instance has its id (TERMINATED is
# reached only from statuses that have one).
REQUIRED: dict[Status, tuple[str, ...]] = {
    S.REQUESTED: ("request_id",),  # its ClientToken and the tag that adopts its instance
    S.LAUNCHED: ("instance_id", "launched_at"),  # LOST is timed from launched_at
    S.PENDING: ("instance_id",),
    S.RUNNING: ("instance_id", "running_at"),  # health checks' grace counts from running_at
    S.READY: ("instance_id", "running_at"),
    S.DRAINING: ("instance_id",),
    S.TERMINATING: ("instance_id", "terminate_requested_at"),
    S.INTERRUPTED: ("instance_id",),
    S.LOST: ("instance_id",),
    S.TERMINATED: ("instance_id",),
}


class IllegalTransitionError(Exception):
    def __init__(self, node_id: str, old: Status, new: Status) -> None:
        super().__init__(f"node {node_id}: {old.value} -> {new.value} is not allowed")
        self.node_id = node_id
        self.old = old
        self.new = new


class IncompleteMoveError(Exception):
    """A move to a status whose required fields neither the record nor the update sets."""

    def __init__(self, node_id: str, new: Status, missing: tuple[str, ...]) -> None:
        super().__init__(f"node {node_id}: {new.value} needs {', '.join(missing)}")
        self.node_id = node_id
        self.new = new
        self.missing = missing


def can_move(old: Status, new: Status) -> bool:
    return new in TRANSITIONS[old]


@dataclass(frozen=True)
class HistoryEntry:
    status: Status
    at: float
    reason: str


class Clear(Enum):
    """In a ``NodeUpdate``, sets a field back to None (None itself leaves the field alone)."""

    CLEAR = "clear"


CLEAR: Final = Clear.CLEAR


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUpdate:
    """Fields a move or a sighting sets on a node record. None leaves a field as it is;
    ``CLEAR`` (for the two that are ever unset) sets it back to None."""

    request_id: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    availability_zone: str | None = None
    private_ip: str | None = None
    launched_at: float | None = None
    first_seen_at: float | None = None
    last_seen_at: float | None = None
    running_at: float | None = None
    terminate_requested_at: float | None = None
    terminate_accepted_at: float | None = None
    idle_since: float | Clear | None = None
    missing_since: float | Clear | None = None
    last_error: str | None = None
    hourly_price: float | None = None  # USD per hour of its pool, known at launch

    @property
    def memory_only(self) -> bool:
        """Sets nothing but the time the node was last seen. Such an update is kept in
        memory and written with the record's next real change: at 10,000 nodes, rewriting
        every row each time a listing shows it dominated the tick. Nothing decides on it
        after a restart (LOST is timed from missing_since, which is written)."""
        return (
            self.request_id is None
            and self.instance_id is None
            and self.instance_type is None
            and self.availability_zone is None
            and self.private_ip is None
            and self.launched_at is None
            and self.first_seen_at is None
            and self.running_at is None
            and self.terminate_requested_at is None
            and self.terminate_accepted_at is None
            and self.idle_since is None
            and self.missing_since is None
            and self.last_error is None
            and self.hourly_price is None
        )


NO_UPDATE: Final = NodeUpdate()

# How a terminating node's last_error begins while EC2 refuses to terminate it (termination
# protection, a policy): ``status`` lists such a node among failures until it is gone.
TERMINATE_REFUSED: Final = "TerminateInstances refused: "


@dataclass
class NodeRecord:
    """What the autoscaler knows about one node. Times are the autoscaler clock's seconds."""

    node_id: str
    node_type: str
    status: Status
    created_at: float
    request_id: str | None = None
    instance_id: str | None = None
    instance_type: str | None = None
    availability_zone: str | None = None
    private_ip: str | None = None
    launched_at: float | None = None
    first_seen_at: float | None = None
    last_seen_at: float | None = None
    running_at: float | None = None
    terminate_requested_at: float | None = None
    terminate_accepted_at: float | None = None
    idle_since: float | None = None
    missing_since: float | None = None  # first tick a seen node was missing from a listing
    last_error: str | None = None
    hourly_price: float | None = None  # USD per hour, recorded at launch (None: unknown)
    history: list[HistoryEntry] = field(default_factory=list)

    def move(
        self, new: Status, at: float, reason: str, update: NodeUpdate = NO_UPDATE
    ) -> HistoryEntry:
        """Apply ``update`` and move to ``new``; refused (nothing changed) when the move is
        illegal or would leave a field ``new`` needs unset."""
        old = self.status
        if not can_move(old, new):
            raise IllegalTransitionError(self.node_id, old, new)
        missing = tuple(
            name
            for name in REQUIRED.get(new, ())
            if getattr(update, name) is None and getattr(self, name) is None
        )
        if missing:
            raise IncompleteMoveError(self.node_id, new, missing)
        self.apply(update)
        self.status = new
        # The one place a status changes, so the one place it is logged.
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s (%s): %s -> %s: %s",
                self.node_id,
                self.instance_id or "no instance yet",
                old.value,
                new.value,
                reason,
                extra={
                    "node_id": self.node_id,
                    "instance_id": self.instance_id,
                    "node_type": self.node_type,
                    "from_status": old.value,
                    "to_status": new.value,
                    "reason": reason,
                },
            )
        entry = HistoryEntry(new, at, reason)
        self.history.append(entry)
        return entry

    def apply(self, update: NodeUpdate) -> None:
        """Set the fields ``update`` names; the status is left to ``move``."""
        if update.request_id is not None:
            self.request_id = update.request_id
        if update.instance_id is not None:
            self.instance_id = update.instance_id
        if update.instance_type is not None:
            self.instance_type = update.instance_type
        if update.availability_zone is not None:
            self.availability_zone = update.availability_zone
        if update.private_ip is not None:
            self.private_ip = update.private_ip
        if update.launched_at is not None:
            self.launched_at = update.launched_at
        if update.first_seen_at is not None:
            self.first_seen_at = update.first_seen_at
        if update.last_seen_at is not None:
            self.last_seen_at = update.last_seen_at
        if update.running_at is not None:
            self.running_at = update.running_at
        if update.terminate_requested_at is not None:
            self.terminate_requested_at = update.terminate_requested_at
        if update.terminate_accepted_at is not None:
            self.terminate_accepted_at = update.terminate_accepted_at
        if update.idle_since is not None:
            self.idle_since = None if isinstance(update.idle_since, Clear) else update.idle_since
        if update.missing_since is not None:
            missing = update.missing_since
            self.missing_since = None if isinstance(missing, Clear) else missing
        if update.last_error is not None:
            self.last_error = update.last_error
        if update.hourly_price is not None:
            self.hourly_price = update.hourly_price

    @property
    def seen(self) -> bool:
        return self.first_seen_at is not None
