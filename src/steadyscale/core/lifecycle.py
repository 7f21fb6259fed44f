"""The life of a node: one status enum, one table of allowed moves, a history per node.

A node record exists from the moment the autoscaler decides to launch it (QUEUED), long
before EC2 has an id for it, until EC2 confirms it terminated. Every move goes through
``NodeRecord.move``, which refuses an illegal one and appends (status, time, reason).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

log = logging.getLogger("steadyscale.lifecycle")


class Status(StrEnum):
    QUEUED = "queued"
    REQUESTED = "requested"
    LAUNCHED = "launched"
    PENDING = "pending"
    RUNNING = "running"
    READY = "ready"
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
            S.INTERRUPTED,
            S.LOST,
        }
    ),
    # Usable: demand is placed on it first.
    S.READY: frozenset(
        {
            S.TERMINATING,  # idle past the idle timeout, or failing its health check
            S.INTERRUPTED,  # EC2 shows it going away without our asking
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
    {S.LAUNCHED, S.PENDING, S.RUNNING, S.READY, S.TERMINATING, S.INTERRUPTED, S.LOST}
)


class IllegalTransitionError(Exception):
    def __init__(self, node_id: str, old: Status, new: Status) -> None:
        super().__init__(f"node {node_id}: {old.value} -> {new.value} is not allowed")
        self.node_id = node_id
        self.old = old
        self.new = new


def can_move(old: Status, new: Status) -> bool:
    return new in TRANSITIONS[old]


@dataclass(frozen=True)
class HistoryEntry:
    status: Status
    at: float
    reason: str


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
    history: list[HistoryEntry] = field(default_factory=list)

    def move(self, new: Status, at: float, reason: str) -> HistoryEntry:
        old = self.status
        if not can_move(old, new):
            raise IllegalTransitionError(self.node_id, old, new)
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

    @property
    def seen(self) -> bool:
        return self.first_seen_at is not None
