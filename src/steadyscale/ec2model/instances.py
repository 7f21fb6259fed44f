"""One instance as the model tracks it: EC2's instance states, the true record of an instance
with the delays drawn for it, and the state changes a backend mirrors into its own records.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from steadyscale.ec2model.settings import Operation


class InstanceState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting-down"
    TERMINATED = "terminated"
    STOPPING = "stopping"
    STOPPED = "stopped"


STATE_CODES: dict[InstanceState, int] = {
    InstanceState.PENDING: 0,
    InstanceState.RUNNING: 16,
    InstanceState.SHUTTING_DOWN: 32,
    InstanceState.TERMINATED: 48,
    InstanceState.STOPPING: 64,
    InstanceState.STOPPED: 80,
}

# Why EC2 says an instance is going away (its StateReason code): reclaimed spot capacity,
# or a TerminateInstances.
SPOT_TERMINATION = "Server.SpotInstanceTermination"
USER_SHUTDOWN = "Client.UserInitiatedShutdown"

# States that still occupy capacity (and would be billed).
ACTIVE_STATES = frozenset({InstanceState.PENDING, InstanceState.RUNNING, InstanceState.STOPPING})


@dataclass(frozen=True)
class StateChange:
    """A transition the backend must mirror; ``new_state`` None means the record is gone."""

    instance_id: str
    old_state: InstanceState
    new_state: InstanceState | None
    reason: str


@dataclass
class TrackedInstance:
    """The ground truth of one instance, plus the delays drawn for it."""

    instance_id: str
    instance_type: str
    availability_zone: str
    market: str
    vcpus: int
    client_token: str | None
    launched_at: float
    visible_at: dict[Operation, float]
    tags: dict[str, str]
    rng: random.Random
    sequence: int = 0  # launch order within the region
    private_ip: str = ""
    hourly_price: float | None = None  # USD per hour: its pool's price at launch
    fleet_id: str | None = None  # the CreateFleet that launched it, if one did
    launch_template: tuple[str, int] | None = None  # (template id, version) it came from
    state: InstanceState = InstanceState.PENDING
    previous_state: InstanceState | None = None
    stale_until: float = 0.0
    running_at: float | None = None
    terminate_requested_at: float | None = None
    terminated_at: float | None = None
    interrupted: bool = False
    tag_ready_at: dict[str, float] = field(default_factory=dict)
    history: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def pool(self) -> tuple[str, str, str]:
        return (self.instance_type, self.availability_zone, self.market)

    @property
    def ending_reason(self) -> str:
        """The StateReason code EC2 shows once the instance is going away."""
        return SPOT_TERMINATION if self.interrupted else USER_SHUTDOWN

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "sequence": self.sequence,
            "state": self.state.value,
            "instance_type": self.instance_type,
            "availability_zone": self.availability_zone,
            "market": self.market,
            "hourly_price": self.hourly_price,
            "fleet_id": self.fleet_id,
            "launch_template": None
            if self.launch_template is None
            else {"id": self.launch_template[0], "version": self.launch_template[1]},
            "client_token": self.client_token,
            "private_ip": self.private_ip,
            "tags": dict(self.tags),
            "launched_at": self.launched_at,
            "visible_at": {op.value: t for op, t in self.visible_at.items()},
            "running_at": self.running_at,
            "terminate_requested_at": self.terminate_requested_at,
            "terminated_at": self.terminated_at,
            "interrupted": self.interrupted,
            "history": [
                {"at": at, "state": state, "reason": reason} for at, state, reason in self.history
            ],
        }


def private_ip(sequence: int) -> str:
    """A made-up address in 10.0.0.0/8, unique per launch; nothing ever connects to it."""
    n = sequence + 10
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
