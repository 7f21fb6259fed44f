"""What the emulator keeps per region besides the model: moto's record of each instance the
model tracks, the answers given under each ClientToken, and the mirroring of the model's
state changes into moto's records (moto's own instances never change state by themselves).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import StateReason

from steadyscale.ec2model.fleet import FleetIds
from steadyscale.ec2model.instances import (
    SPOT_TERMINATION,
    STATE_CODES,
    InstanceState,
    StateChange,
)
from steadyscale.ec2model.launch import ClientTokens
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import Operation


def set_state(inst: Any, state: InstanceState) -> None:
    """Make a moto instance show ``state``."""
    inst._state.name = state.value
    inst._state.code = STATE_CODES[state]


def state_view(inst: Any, seen: InstanceState) -> Any:
    """A shallow copy of a moto instance that shows another state (a stale read)."""
    view = copy.copy(inst)
    view._state = copy.copy(inst._state)
    set_state(view, seen)
    return view


@dataclass
class RegionRecords:
    """One region: the model, and moto's records of the instances the model tracks."""

    model: RegionModel
    account_id: str
    instances: dict[str, Any] = field(default_factory=dict)  # id -> moto Instance
    reservation_of: dict[str, str] = field(default_factory=dict)  # id -> reservation id
    # The reservation first answered under each ClientToken.
    tokens: ClientTokens[Any] = field(default_factory=ClientTokens)
    # CreateFleet's and the launch-template calls' first answers under each ClientToken.
    fleet_tokens: ClientTokens[Any] = field(default_factory=ClientTokens)
    template_tokens: ClientTokens[Any] = field(default_factory=ClientTokens)
    fleet_ids: FleetIds = field(init=False)

    def __post_init__(self) -> None:
        self.fleet_ids = FleetIds(f"{self.model.settings.seed}/{self.model.region}")

    @property
    def backend(self) -> Any:
        """moto's EC2 backend of this account and region."""
        return ec2_backends[self.account_id][self.model.region]

    def adopt(self, inst: Any, reservation_id: str) -> None:
        """Track a moto instance RunInstances just made; it starts pending, as on EC2."""
        self.instances[inst.id] = inst
        self.reservation_of[inst.id] = reservation_id
        set_state(inst, InstanceState.PENDING)

    def advance(self, now: float) -> None:
        """Apply the model's due transitions to moto's records."""
        self.mirror(self.model.advance(now))

    def mirror(self, changes: Iterable[StateChange]) -> None:
        for change in changes:
            inst = self.instances.get(change.instance_id)
            if inst is None:
                continue
            if change.new_state is None:
                self._forget(change.instance_id)
            elif change.new_state is InstanceState.TERMINATED:
                inst.terminate()
                tracked = self.model.instances.get(change.instance_id)
                if tracked is not None and tracked.interrupted:
                    inst.state_reason = StateReason(
                        f"{SPOT_TERMINATION}: Spot instance termination", SPOT_TERMINATION
                    )
            else:
                set_state(inst, change.new_state)

    def _forget(self, instance_id: str) -> None:
        inst = self.instances.pop(instance_id)
        reservation_id = self.reservation_of.pop(instance_id, None)
        reservations = self.backend.reservations
        reservation = reservations.get(reservation_id)
        if reservation is not None:
            reservation.instances = [i for i in reservation.instances if i is not inst]
            if not reservation.instances:
                del reservations[reservation_id]

    def lookup(self, instance_id: str) -> Any | None:
        """moto's record of an instance; None for one EC2 no longer lists."""
        inst = self.instances.get(instance_id)
        if inst is None and instance_id not in self.model.gone:
            inst = self.backend.get_instance_by_id(instance_id)
        return inst

    def require_visible(
        self, instance_ids: list[str], operation: Operation, now: float
    ) -> list[Any]:
        """moto's records of the instances, when ``operation`` sees every one of them;
        else ``InvalidInstanceID.NotFound`` naming those it does not see (F1, F4, F5)."""
        visibility = self.model.visibility
        missing = [
            i
            for i in instance_ids
            if not visibility.is_visible(i, operation, now) or self.lookup(i) is None
        ]
        if missing:
            raise InvalidInstanceIdError(missing)
        return [self.lookup(i) for i in instance_ids]
