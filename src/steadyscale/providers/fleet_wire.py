"""EC2's wire shape of a fleet launch, written once: the CreateFleet ``Type=instant``
parameters of a ``FleetSpec`` (overrides, target capacity, strategy, tags at creation,
ClientToken) and its answer read back as instances and per-override errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steadyscale.core.instances import (
    TAG_CLUSTER,
    TAG_LEDGER,
    TAG_NODE_TYPE,
    TAG_REQUEST,
    CloudInstance,
)
from steadyscale.providers.protocol import FleetError, FleetOverride, FleetResult, FleetSpec

# Resource types an instant fleet tags at creation: the instances and the fleet itself.
FLEET_TAGGED = ("instance", "fleet")


def fleet_tags(spec: FleetSpec, cluster_name: str) -> dict[str, str]:
    """The tags that say whose a fleet's instances are (as RunInstances' launches carry)."""
    tags = {
        TAG_CLUSTER: spec.cluster_name or cluster_name,
        TAG_NODE_TYPE: spec.node_type,
        TAG_REQUEST: spec.request_id,
    }
    if spec.ledger_id is not None:
        tags[TAG_LEDGER] = spec.ledger_id
    return tags


def _override(override: FleetOverride) -> dict[str, Any]:
    wire: dict[str, Any] = {"InstanceType": override.instance_type}
    if override.subnet_id is not None:
        wire["SubnetId"] = override.subnet_id
    elif override.availability_zone is not None:
        wire["AvailabilityZone"] = override.availability_zone
    if override.priority is not None:
        wire["Priority"] = override.priority
    return wire


def _version(number: int) -> str:
    """A version number as CreateFleet takes it; 0 stands for the template's default
    version (a user's template named without one)."""
    return str(number) if number > 0 else "$Default"


def create_fleet_params(spec: FleetSpec, cluster_name: str) -> dict[str, Any]:
    """CreateFleet ``Type=instant`` for ``spec``: one launch template config whose
    overrides are the spec's pools, ``count`` in the spec's market, its strategy, tags at
    creation on the instances and the fleet, and the spec's ClientToken."""
    tags = [{"Key": k, "Value": v} for k, v in fleet_tags(spec, cluster_name).items()]
    template = spec.launch_template
    spot = spec.market == "spot"
    params: dict[str, Any] = {
        "Type": "instant",
        "ClientToken": spec.client_token,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateName": template.name,
                    "Version": _version(template.version),
                },
                "Overrides": [_override(o) for o in spec.overrides],
            }
        ],
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": spec.count,
            "OnDemandTargetCapacity": 0 if spot else spec.count,
            "SpotTargetCapacity": spec.count if spot else 0,
            "DefaultTargetCapacityType": spec.market,
        },
        "TagSpecifications": [{"ResourceType": kind, "Tags": tags} for kind in FLEET_TAGGED],
    }
    strategy = {"AllocationStrategy": spec.allocation_strategy}
    params["SpotOptions" if spot else "OnDemandOptions"] = strategy
    return params


def _zone_of(spec: FleetSpec, wire: Mapping[str, Any]) -> str | None:
    """The AZ of an answer's override: as EC2 echoed it, else the spec's for that subnet."""
    if wire.get("AvailabilityZone"):
        return str(wire["AvailabilityZone"])
    subnet = wire.get("SubnetId")
    for override in spec.overrides:
        if subnet is not None and override.subnet_id == subnet:
            return override.availability_zone
    return None


def fleet_result(spec: FleetSpec, answer: Mapping[str, Any], cluster_name: str) -> FleetResult:
    """CreateFleet's answer: each instance id with its type, AZ and market (the answer
    carries no state: a fresh instance is pending), and each per-override error."""
    tags = fleet_tags(spec, cluster_name)
    instances: list[CloudInstance] = []
    for group in answer.get("Instances") or []:
        wire = (group.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
        lifecycle = group.get("Lifecycle") or spec.market
        for instance_id in group.get("InstanceIds") or []:
            instances.append(
                CloudInstance(
                    instance_id=instance_id,
                    state="pending",
                    instance_type=group.get("InstanceType") or wire.get("InstanceType"),
                    availability_zone=_zone_of(spec, wire),
                    tags=dict(tags),
                    lifecycle="spot" if lifecycle == "spot" else None,
                )
            )
    errors = []
    for raw in answer.get("Errors") or []:
        wire = (raw.get("LaunchTemplateAndOverrides") or {}).get("Overrides") or {}
        errors.append(
            FleetError(
                code=str(raw.get("ErrorCode", "Unknown")),
                message=str(raw.get("ErrorMessage", "")),
                instance_type=wire.get("InstanceType"),
                availability_zone=_zone_of(spec, wire),
                subnet_id=wire.get("SubnetId"),
            )
        )
    return FleetResult(tuple(instances), tuple(errors), answer.get("FleetId"))
