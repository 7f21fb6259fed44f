"""What the in-memory backend shows of an instance: a ``CloudInstance`` in the state a read
sees (perhaps a stale one), or as a RunInstances answer shows it. Views are cached per
(instance, state shown), so a listing of 10,000 unchanged instances allocates nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from steadyscale.core.instances import CloudInstance
from steadyscale.ec2model.instances import InstanceState, TrackedInstance
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import Operation
from steadyscale.ec2model.visibility import Visibility
from steadyscale.providers.byid import chunks
from steadyscale.providers.memory.calls import ModelCalls
from steadyscale.providers.protocol import LOOKUP_BATCH, LaunchResult

_ENDING = (InstanceState.SHUTTING_DOWN, InstanceState.TERMINATED)


class InstanceViews:
    """Views of one region's instances, as its reads show them."""

    def __init__(self, visibility: Visibility) -> None:
        self._visibility = visibility
        self._views: dict[str, tuple[str, CloudInstance]] = {}

    def shown(self, inst: TrackedInstance, now: float) -> CloudInstance:
        """The instance as a read shows it now."""
        state = self._visibility.observed_state(inst.instance_id, now) or inst.state
        cached = self._views.get(inst.instance_id)
        if cached is not None and cached[0] == state.value:
            return cached[1]
        reason = inst.ending_reason if state in _ENDING else None
        view = CloudInstance(
            instance_id=inst.instance_id,
            state=state.value,
            instance_type=inst.instance_type,
            availability_zone=inst.availability_zone,
            private_ip=inst.private_ip,
            tags=dict(inst.tags),
            state_reason=reason,
            launch_time=inst.launched_at,
            lifecycle="spot" if inst.market == "spot" else None,
        )
        self._views[inst.instance_id] = (state.value, view)
        return view

    def forget(self, instance_id: str) -> None:
        """Drop the cached view of an instance whose tags changed."""
        self._views.pop(instance_id, None)


def launched(model: RegionModel, instance_ids: Iterable[str]) -> LaunchResult:
    """What a RunInstances answer says of its instances (a replayed answer too): pending,
    with their tags as they are now."""
    return LaunchResult(
        instances=tuple(_launched(model.instances.get(i) or model.gone[i]) for i in instance_ids)
    )


def _launched(inst: TrackedInstance) -> CloudInstance:
    return CloudInstance(
        instance_id=inst.instance_id,
        state=InstanceState.PENDING.value,
        instance_type=inst.instance_type,
        availability_zone=inst.availability_zone,
        private_ip=inst.private_ip,
        tags=dict(inst.tags),
        launch_time=inst.launched_at,
        lifecycle="spot" if inst.market == "spot" else None,
    )


class StatusChecks:
    """The memory backend's DescribeInstanceStatus (its calls are the provider's)."""

    _calls: ModelCalls

    def instance_status(self, instance_ids: Sequence[str]) -> dict[str, str]:
        return status_checks(self._calls, instance_ids)


def status_checks(calls: ModelCalls, instance_ids: Sequence[str]) -> dict[str, str]:
    """DescribeInstanceStatus by id on the model: running instances, "impaired" when their
    checks fail (``impair``), else "ok"; ids not shown yet dropped as the boto3 provider
    drops them."""
    model = calls.model
    statuses: dict[str, str] = {}

    def by_id(chosen: list[str], now: float) -> dict[str, str]:
        running = (model.instances[i] for i in chosen)
        return {
            inst.instance_id: "impaired" if inst.impaired else "ok"
            for inst in running
            if inst.state is InstanceState.RUNNING
        }

    for chunk in chunks(instance_ids, LOOKUP_BATCH):
        answer, _ = calls.by_id("DescribeInstanceStatus", chunk, by_id, Operation.DESCRIBE_BY_ID)
        statuses.update(answer or {})
    return statuses
