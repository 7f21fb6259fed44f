"""CreateFleet's answer as boto3 gives it, read back as instances (with their type, AZ,
market and ownership tags) and per-override errors. (Its request is ``wire``'s.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steadyscale.core.instances import CloudInstance
from steadyscale.providers.protocol import FleetError, FleetResult, FleetSpec
from steadyscale.providers.wire import ownership_tags


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
    tags = ownership_tags(
        spec.cluster_name or cluster_name, spec.node_type, spec.request_id, spec.ledger_id
    )
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
