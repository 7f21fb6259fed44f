"""What EC2 shows of an instance, and the tags that say whose it is.

``CloudInstance`` is the value every provider returns and the reconciler reads: a snapshot
that may be stale or late (EC2 is eventually consistent). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

TAG_CLUSTER = "steadyscale:cluster"
TAG_NODE_TYPE = "steadyscale:node-type"
TAG_REQUEST = "steadyscale:request-id"
# The id of the ledger that launched an instance: only that ledger may conclude it is
# unwanted. An instance without it (or with another's) is unknown, never garbage.
TAG_LEDGER = "steadyscale:ledger-id"


@dataclass(frozen=True)
class CloudInstance:
    instance_id: str
    state: str  # EC2's state name: pending, running, shutting-down, terminated, ...
    instance_type: str | None = None
    availability_zone: str | None = None
    private_ip: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    state_reason: str | None = None
    launch_time: float | None = None  # EC2's LaunchTime, seconds since the epoch
    public_ip: str | None = None
    lifecycle: str | None = None  # EC2's InstanceLifecycle: "spot", or None for on-demand

    @property
    def ledger_id(self) -> str | None:
        """The id of the ledger that launched it (its ``TAG_LEDGER``), if it carries one."""
        return self.tags.get(TAG_LEDGER)
