"""The launcher's fleet path: a fleet node type's launch request (one CreateFleet across
its types and subnets, the pools set aside left out), its spec kept in the ledger with the
request so a resend after a crash or a lost answer sends the very same call under the same
ClientToken, and what a CreateFleet answer says about pools (per-override errors)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.changes import FLEET_SPEC_KEY
from steadyscale.loop.offerings import OfferingBook
from steadyscale.loop.pricing import PriceBook
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.loop.templates import Templates
from steadyscale.providers.protocol import (
    FleetOverride,
    FleetResult,
    FleetSpec,
    TemplateVersion,
)
from steadyscale.store.ledger import LaunchRequest

# The key of a request's spec that marks it a fleet launch (else RunInstances parameters).
FLEET_KEY = FLEET_SPEC_KEY
# CreateFleet answers these for a template EC2 does not show yet: not final, resent.
TEMPLATE_NOT_VISIBLE = frozenset(
    {"InvalidLaunchTemplateName.NotFoundException", "InvalidLaunchTemplateId.NotFound"}
)


def is_fleet(request: LaunchRequest) -> bool:
    return request.spec is not None and request.spec.startswith('{"' + FLEET_KEY)


def encode_fleet(
    template: TemplateVersion,
    overrides: tuple[FleetOverride, ...],
    market: str,
    strategy: str,
    node_config: Mapping[str, Any],
) -> str:
    body = {
        "node_config": dict(node_config),
        "template": {
            "name": template.name,
            "id": template.template_id,
            "version": template.version,
        },
        "overrides": [
            {
                "type": o.instance_type,
                "subnet": o.subnet_id,
                "zone": o.availability_zone,
                "priority": o.priority,
            }
            for o in overrides
        ],
        "market": market,
        "strategy": strategy,
    }
    return json.dumps({FLEET_KEY: body}, sort_keys=True)


def fleet_spec(
    request: LaunchRequest, *, cluster_name: str | None, ledger_id: str | None
) -> FleetSpec:
    """The CreateFleet of a request, exactly as its spec recorded it."""
    body: Mapping[str, Any] = json.loads(request.spec or "{}")[FLEET_KEY]
    template = body["template"]
    return FleetSpec(
        request_id=request.request_id,
        client_token=request.client_token,
        node_type=request.node_type,
        count=request.count,
        launch_template=TemplateVersion(
            name=template["name"], template_id=template["id"], version=template["version"], data={}
        ),
        overrides=tuple(
            FleetOverride(o["type"], o["subnet"], o["zone"], o["priority"])
            for o in body["overrides"]
        ),
        market=body["market"],
        allocation_strategy=body["strategy"],
        cluster_name=cluster_name,
        ledger_id=ledger_id,
    )


def fleet_market(request: LaunchRequest) -> str:
    return str(json.loads(request.spec or "{}")[FLEET_KEY]["market"])


class FleetPlanner:
    """What a fleet node type launches this tick, and what its answers say of pools."""

    def __init__(
        self,
        config: ClusterConfig,
        offerings: OfferingBook,
        templates: Templates,
        prices: PriceBook,
        reporter: Reporter,
    ) -> None:
        self.config = config
        self.offerings = offerings
        self.templates = templates
        self.prices = prices
        self.reporter = reporter

    def request(
        self, request_id: str, node_type: str, count: int, now: float, report: TickReport
    ) -> LaunchRequest | None:
        """A fleet launch request, or None when it waits (its template not shown yet, or
        every pool set aside)."""
        spec = self.config.available_node_types[node_type]
        overrides = self.offerings.overrides(node_type)
        if not overrides:
            return None
        template = self.templates.version(node_type, report)
        if template is None:
            return None
        if spec.market == "spot":
            # The prices of the pools it may launch into, to record each node's at launch.
            self.prices.want_spot({o.instance_type for o in overrides})
        strategy = spec.strategy
        if strategy != "prioritized":
            overrides = tuple(
                FleetOverride(o.instance_type, o.subnet_id, o.availability_zone) for o in overrides
            )
        return LaunchRequest(
            request_id=request_id,
            node_type=node_type,
            count=count,
            client_token=f"ss-{request_id}",
            status="open",
            created_at=now,
            spec=encode_fleet(template, overrides, spec.market, strategy, spec.node_config),
        )

    def learn(self, spec: FleetSpec, result: FleetResult, report: TickReport) -> None:
        """Pools CreateFleet could not launch in are set aside (per instance type, subnet
        (so AZ), market; the whole type when EC2 chose the subnet), so the next fleet call
        leaves them out."""
        for error in result.errors:
            if error.instance_type is None or error.code in TEMPLATE_NOT_VISIBLE:
                continue  # no pool's fault: the template is not shown yet
            self.offerings.set_aside_offering(
                error.instance_type, error.subnet_id, spec.market, error.code, report
            )
