"""The EC2 gate of a replica: a ``CloudProvider`` that asks, just before every call that
changes something in EC2, whether this replica may still act, and sends nothing when not.

The check sits at the call, not at the start of the tick, because a tick may run past its
leader's trust deadline (a slow EC2, a paused process): from that instant the successor
may lead, and only reads may still go out. Reads pass through unchecked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from steadyscale.core.instances import CloudInstance
from steadyscale.providers.protocol import (
    CloudProvider,
    FleetResult,
    FleetSpec,
    LaunchResult,
    LaunchSpec,
    NotVisibleYet,
    SendGated,
    TemplateVersion,
    TerminateResult,
)


class LeaderGatedProvider:
    """``provider``, its mutations (RunInstances, CreateFleet, TerminateInstances,
    CreateTags, Stop/StartInstances, the launch-template calls) sent only while ``check()``
    does not raise."""

    def __init__(self, provider: CloudProvider, check: Callable[[], None]) -> None:
        self.inner = provider
        self.check = check
        self.cluster_name = provider.cluster_name
        if isinstance(provider, SendGated):
            # Its client retries by itself: each attempt is checked as it goes out.
            provider.gate_sends(check)

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

    def launch_fleet(self, spec: FleetSpec) -> FleetResult:
        self.check()
        return self.inner.launch_fleet(spec)

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        self.check()
        return self.inner.create_launch_template(name, data, client_token)

    def create_launch_template_version(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        self.check()
        return self.inner.create_launch_template_version(name, data, client_token)

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

    def launch_template_versions(self, name: str) -> list[TemplateVersion] | NotVisibleYet:
        return self.inner.launch_template_versions(name)

    def spot_prices(self, instance_types: Sequence[str]) -> dict[tuple[str, str], float]:
        return self.inner.spot_prices(instance_types)
