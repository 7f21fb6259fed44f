"""The EC2 gate of a replica: a ``CloudProvider`` that asks, just before every call that
changes something in EC2, whether this replica may still act, and sends nothing when not.

The check sits at the call, not at the start of the tick, because a tick may run past its
leader's trust deadline (a slow EC2, a paused process): from that instant the successor
may lead, and only reads may still go out. Reads pass through unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from steadyscale.core.instances import CloudInstance
from steadyscale.providers.protocol import (
    CloudProvider,
    LaunchResult,
    LaunchSpec,
    NotVisibleYet,
    TerminateResult,
)


class LeaderGatedProvider:
    """``provider``, its mutations (RunInstances, TerminateInstances, CreateTags,
    Stop/StartInstances) sent only while ``check()`` does not raise."""

    def __init__(self, provider: CloudProvider, check: Callable[[], None]) -> None:
        self.inner = provider
        self.check = check
        self.cluster_name = provider.cluster_name

    # ------------------------------------------------------------------ mutations

    def launch(self, spec: LaunchSpec) -> LaunchResult:
        self.check()
        return self.inner.launch(spec)

    def terminate(self, instance_ids: Sequence[str]) -> TerminateResult:
        self.check()
        return self.inner.terminate(instance_ids)

    def create_tags(self, instance_ids: Sequence[str], tags: Mapping[str, str]) -> list[str]:
        self.check()
        return self.inner.create_tags(instance_ids, tags)

    def change_state(self, action: str, instance_ids: Sequence[str]) -> TerminateResult:
        self.check()
        return self.inner.change_state(action, instance_ids)

    # ------------------------------------------------------------------ reads

    def preflight(self) -> None:
        self.inner.preflight()

    def launch_budget(self) -> int:
        return self.inner.launch_budget()

    def list_cluster(self) -> list[CloudInstance]:
        return self.inner.list_cluster()

    def describe(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        return self.inner.describe(instance_ids)

    def describe_by_id(self, instance_ids: Sequence[str]) -> list[CloudInstance]:
        return self.inner.describe_by_id(instance_ids)

    def lookup(self, instance_id: str) -> CloudInstance | NotVisibleYet:
        return self.inner.lookup(instance_id)

    def list_tagged(
        self, key: str, value: str, states: Sequence[str] | None = None
    ) -> list[CloudInstance]:
        return self.inner.list_tagged(key, value, states)

    def instance_status(self, instance_ids: Sequence[str]) -> dict[str, str]:
        return self.inner.instance_status(instance_ids)

    def calls_by_action(self) -> dict[str, int]:
        return self.inner.calls_by_action()
