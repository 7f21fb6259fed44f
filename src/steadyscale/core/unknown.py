"""Instances the ledger does not track, judged (I7: unknown is not unwanted), and the record
a taken-over instance starts with. Pure: no I/O, no clock.

An instance is proven unwanted only by the ledger that launched it: it carries this
ledger's id, and its request-id tag names a launch request this ledger recorded whose
nodes all have their instances or were given up (a lost answer's surplus, a launch
superseded or cancelled). Anything else in the cluster is unknown: reported, left alone,
and taken over on request (``steadyscale ledger adopt``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from steadyscale.core.instances import TAG_NODE_TYPE, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status


class Standing(StrEnum):
    """What the ledger can say of a cluster instance it does not track."""

    UNWANTED = "unwanted"  # its own launch, given up: terminated past the grace period
    OTHER_LEDGER = "other_ledger"  # launched by another ledger (a lost one, or a twin's)
    NO_LEDGER_ID = "no_ledger_id"  # launched before ledgers had ids, or not by steadyscale
    UNKNOWN_REQUEST = "unknown_request"  # this ledger's id, a request it has no record of


UNKNOWN = tuple(s for s in Standing if s is not Standing.UNWANTED)


def standing(
    instance: CloudInstance, *, ledger_id: str | None, requests: Collection[str]
) -> Standing:
    """How the ledger stands to ``instance``, one it tracks no node for and no open request
    of it waits on. ``requests``: every launch request id the ledger recorded. A request
    id the ledger does not have is no proof: a ledger restored from an older export has
    the same id but not the launches made since."""
    if instance.ledger_id is None:
        return Standing.NO_LEDGER_ID
    if ledger_id is None or instance.ledger_id != ledger_id:
        return Standing.OTHER_LEDGER
    if instance.tags.get(TAG_REQUEST) in requests:
        return Standing.UNWANTED
    return Standing.UNKNOWN_REQUEST


# What EC2's state says a taken-over instance is, in the lifecycle: a stopped instance is
# no capacity, and the loop treats a node of ours that stops as interrupted (terminated,
# and replaced if demand needs it).
_ADOPTED_AS = {
    "pending": Status.PENDING,
    "running": Status.RUNNING,
    "stopping": Status.INTERRUPTED,
    "stopped": Status.INTERRUPTED,
    "shutting-down": Status.TERMINATING,
}


@dataclass(frozen=True)
class Refused:
    """An instance that cannot be taken over, and why (in words)."""

    instance_id: str
    why: str


def adopted_record(instance: CloudInstance, node_id: str, now: float) -> NodeRecord | Refused:
    """The node record that takes ``instance`` over: its node type and request from its
    tags, what EC2 shows of it, its status from EC2's state. An instance without a
    node-type tag is refused: no rule tells which node type it is."""
    node_type = instance.tags.get(TAG_NODE_TYPE)
    status = _ADOPTED_AS.get(instance.state)
    if not node_type:
        return Refused(instance.instance_id, f"it has no {TAG_NODE_TYPE} tag")
    if status is None:
        return Refused(instance.instance_id, f"EC2 shows it {instance.state}")
    record = NodeRecord(
        node_id=node_id,
        node_type=node_type,
        status=status,
        created_at=now,
        request_id=instance.tags.get(TAG_REQUEST),
        instance_id=instance.instance_id,
        instance_type=instance.instance_type,
        availability_zone=instance.availability_zone,
        private_ip=instance.private_ip,
        launched_at=instance.launch_time if instance.launch_time is not None else now,
        first_seen_at=now,
        last_seen_at=now,
        running_at=now if status is Status.RUNNING else None,
        terminate_requested_at=now if status is Status.TERMINATING else None,
    )
    why = f"adopted: EC2 shows it {instance.state}"
    record.history.append(HistoryEntry(status, now, why))
    return record
