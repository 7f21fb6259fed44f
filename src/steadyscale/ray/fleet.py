"""The Ray provider's fleet launches: a node_config carrying ``InstanceTypes: [...]`` is
launched by one CreateFleet instant across its types and ``SubnetIds``, from a launch
template per node type made from the rest of the node_config (versioned by content, waited
for until EC2 shows it, within the launch deadline). The journaled intent holds the very
CreateFleet, so a resend is identical; Ray's tags reach the instances by CreateTags (the
fleet tags them as steadyscale's at creation)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from steadyscale.config.fleet import content_hash, default_strategy, template_data
from steadyscale.errors import CloudError, CloudUnavailable
from steadyscale.loop.fleet import FLEET_KEY, encode_fleet, fleet_spec, is_fleet
from steadyscale.loop.templates import ALREADY_EXISTS
from steadyscale.providers.protocol import (
    FleetOverride,
    FleetResult,
    NotVisibleYet,
    TemplateVersion,
)
from steadyscale.providers.wire import market_of
from steadyscale.ray.journal import LaunchIntent
from steadyscale.ray.shared import Shared
from steadyscale.store.ledger import LaunchRequest

TYPES_KEY = "InstanceTypes"
# How long to wait between looks for a template EC2 does not show yet.
TEMPLATE_POLL_SECONDS = 1.0


def is_fleet_config(node_config: Mapping[str, Any]) -> bool:
    return TYPES_KEY in node_config


def is_fleet_intent(intent: LaunchIntent) -> bool:
    return FLEET_KEY in intent.node_config


def _request(intent: LaunchIntent) -> LaunchRequest:
    return LaunchRequest(
        request_id=intent.request_id,
        node_type=intent.node_type,
        count=intent.count,
        client_token=intent.client_token,
        status="open",
        created_at=intent.created_at,
        spec=json.dumps(intent.node_config, sort_keys=True),
    )


def send_fleet(shared: Shared, intent: LaunchIntent) -> FleetResult:
    """The intent's CreateFleet, exactly as it was journaled."""
    request = _request(intent)
    assert is_fleet(request)
    spec = fleet_spec(request, cluster_name=None, ledger_id=shared.state.ledger_id)
    return shared.cloud.launch_fleet(spec)


class RayFleets:
    """Launch templates of the Ray cluster's fleet node types, and their fleet specs."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._ready: dict[str, tuple[str, TemplateVersion]] = {}

    def plan(self, node_config: Mapping[str, Any], node_type: str) -> dict[str, Any]:
        """The journaled form of a fleet launch (``LaunchIntent.node_config``): its
        CreateFleet, with a template version EC2 shows."""
        config = dict(node_config)
        types = [str(t) for t in config.pop(TYPES_KEY)]
        subnets: list[str | None] = list(config.pop("SubnetIds", None) or [None])
        config.pop("InstanceType", None)
        market = market_of(config)
        config.pop("InstanceMarketOptions", None)
        template = self.template(node_type, template_data(config))
        overrides = tuple(
            FleetOverride(t, subnet_id=s, priority=float(rank))
            for rank, t in enumerate(types)
            for s in subnets
        )
        strategy = default_strategy(market)
        planned: dict[str, Any] = json.loads(
            encode_fleet(template, overrides, market, strategy, node_config)
        )
        return planned

    def template(self, node_type: str, data: dict[str, Any]) -> TemplateVersion:
        """The version of ``steadyscale-ray-<cluster>-<node type>`` carrying ``data``, made if
        need be, once EC2 shows it (``CloudUnavailable`` past the launch deadline)."""
        name = f"steadyscale-ray-{self._shared.cluster_name}-{node_type}"[:128]
        digest = content_hash(data)
        ready = self._ready.get(name)
        if ready is not None and ready[0] == digest:
            return ready[1]
        cloud, clock = self._shared.cloud, self._shared.clock
        token = content_hash({"name": name, "data": data})
        deadline = clock.now() + self._shared.settings.launch_deadline_seconds
        made: int | None = None
        while True:
            versions = cloud.launch_template_versions(name)
            if isinstance(versions, NotVisibleYet):
                if made is None:
                    made = self._create(name, data, token)
            else:
                for found in reversed(versions):
                    if found.version == made or content_hash(found.data) == digest:
                        self._ready[name] = (digest, found)
                        return found
                if made is None:
                    version = cloud.create_launch_template_version(name, data, f"ss-ltv-{token}")
                    made = version.version
            if clock.now() >= deadline:
                raise CloudUnavailable(
                    "LaunchTemplateNotVisible", f"EC2 does not show launch template {name} yet"
                )
            clock.sleep(TEMPLATE_POLL_SECONDS)

    def _create(self, name: str, data: dict[str, Any], token: str) -> int:
        try:
            return self._shared.cloud.create_launch_template(name, data, f"ss-lt-{token}").version
        except CloudError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            return 1
