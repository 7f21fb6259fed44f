"""EC2's wire shape, written once: the RunInstances parameters of a launch (tags at
creation, subnet, counts, ClientToken) and the market a launch asks for, written and read.
Every backend, the loop and the Ray provider build their requests here, so a rule cannot
drift between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from steadyscale.core.instances import TAG_CLUSTER, TAG_LEDGER, TAG_NODE_TYPE, TAG_REQUEST
from steadyscale.providers.protocol import FleetOverride, FleetSpec, LaunchSpec

# Resource types RunInstances tags with the cluster's tags (TagSpecifications). Volumes
# carry the cluster tag too, so an IAM policy can require it on both (aws:RequestTag) and
# a leaked volume is still recognisably ours.
TAGGED_AT_LAUNCH = ("instance", "volume")
# What CreateFleet instant tags at creation: its instances (volumes take their tags from
# the launch template, as EC2 allows only "fleet" and "instance" here).
TAGGED_BY_FLEET = ("instance",)

Market = Literal["spot", "on-demand"]


def market_of(params: Mapping[str, Any] | None) -> Market:
    """The market RunInstances parameters ask for: spot with ``InstanceMarketOptions``
    of MarketType spot, else on-demand."""
    options = params.get("InstanceMarketOptions") if params else None
    spot = isinstance(options, Mapping) and options.get("MarketType") == "spot"
    return "spot" if spot else "on-demand"


def with_market(params: Mapping[str, Any], market: Market) -> dict[str, Any]:
    """A copy of RunInstances parameters that asks for ``market`` (``market_of`` reads it
    back): spot through ``InstanceMarketOptions``; on-demand is EC2's default."""
    asked = dict(params)
    if market == "spot":
        asked["InstanceMarketOptions"] = {"MarketType": "spot"}
    return asked


def _pairs(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def merge_tags(
    specs: Sequence[Mapping[str, Any]] | None,
    tags: Mapping[str, str],
    *,
    resource_types: Sequence[str],
    precedence: Literal["ours", "theirs"],
    default_name: str | None = None,
    new_specs_first: bool = False,
) -> list[dict[str, Any]]:
    """TagSpecifications that carry ``tags`` on each of ``resource_types``, merged into the
    caller's own ``specs`` (which are not modified).

    ``precedence`` says whose value wins when a key is in both: ``ours`` for tags that say
    whose an instance is (steadyscale's own, never overridden), ``theirs`` where the user
    may override (Ray's provider lets a node config's tags win over Ray's). A
    ``default_name`` is added as ``Name`` unless the caller named the resource. A resource
    type the caller gave no spec for gets one, appended (or first, ``new_specs_first``).
    """
    merged = [dict(spec) for spec in specs or []]
    ours = _pairs(tags)
    default = [] if default_name is None else [{"Key": "Name", "Value": default_name}]
    for resource_type in resource_types:
        found = next((s for s in merged if s.get("ResourceType") == resource_type), None)
        if found is None:
            new = {"ResourceType": resource_type, "Tags": [*ours, *default]}
            merged.insert(0 if new_specs_first else len(merged), new)
            continue
        given = list(found.get("Tags", []))
        if precedence == "ours":
            theirs = [t for t in given if t["Key"] not in tags]
            named = any(t["Key"] == "Name" for t in theirs)
            found["Tags"] = theirs + ours + ([] if named else default)
        else:
            keys = {t["Key"] for t in given}
            found["Tags"] = [t for t in ours if t["Key"] not in keys] + given
    return merged


def run_instances_params(spec: LaunchSpec, cluster_name: str) -> dict[str, Any]:
    """The RunInstances parameters of a launch: its node config with the cluster's tags at
    creation (the ledger's id among them when the spec has one; a Name the caller chose is
    kept, ours is only a default), its subnet, and MinCount=1, MaxCount=count under its
    ClientToken, so EC2 launches it once. The cluster is ``cluster_name`` unless the spec
    names the one its first attempt was sent under."""
    cluster_name = spec.cluster_name or cluster_name
    config = dict(spec.node_config)
    ownership = {
        TAG_CLUSTER: cluster_name,
        TAG_NODE_TYPE: spec.node_type,
        TAG_REQUEST: spec.request_id,
    }
    if spec.ledger_id is not None:
        ownership[TAG_LEDGER] = spec.ledger_id
    specs = merge_tags(
        config.pop("TagSpecifications", None),
        ownership,
        resource_types=TAGGED_AT_LAUNCH,
        precedence="ours",
        default_name=f"{cluster_name}-{spec.node_type}",
    )
    if spec.subnet_id and "NetworkInterfaces" not in config:
        config["SubnetId"] = spec.subnet_id
    return {
        "MinCount": 1,
        "MaxCount": spec.count,
        "ClientToken": spec.client_token,
        "TagSpecifications": specs,
        **config,
    }


def instance_tags(params: Mapping[str, Any]) -> dict[str, str]:
    """The tags RunInstances parameters put on the instances (as EC2 reads them)."""
    tags: dict[str, str] = {}
    for tag_spec in params.get("TagSpecifications") or []:
        if tag_spec.get("ResourceType") == "instance":
            tags.update({t["Key"]: t.get("Value", "") for t in tag_spec.get("Tags", [])})
    return tags


def ownership_tags(
    cluster_name: str, node_type: str, request_id: str, ledger_id: str | None
) -> dict[str, str]:
    """The tags that say whose an instance is."""
    tags = {TAG_CLUSTER: cluster_name, TAG_NODE_TYPE: node_type, TAG_REQUEST: request_id}
    if ledger_id is not None:
        tags[TAG_LEDGER] = ledger_id
    return tags


def _override(override: FleetOverride) -> dict[str, Any]:
    shaped: dict[str, Any] = {"InstanceType": override.instance_type}
    if override.subnet_id:
        shaped["SubnetId"] = override.subnet_id
    if override.availability_zone:
        shaped["AvailabilityZone"] = override.availability_zone
    if override.priority is not None:
        shaped["Priority"] = override.priority
    return shaped


def create_fleet_params(spec: FleetSpec, cluster_name: str) -> dict[str, Any]:
    """The CreateFleet parameters of a fleet launch: Type=instant, ``count`` instances of
    one market over the overrides of one launch template version, the allocation strategy,
    the ownership tags on the instances at creation, under the spec's ClientToken."""
    cluster_name = spec.cluster_name or cluster_name
    tags = ownership_tags(cluster_name, spec.node_type, spec.request_id, spec.ledger_id)
    options = "SpotOptions" if spec.market == "spot" else "OnDemandOptions"
    template = spec.launch_template
    return {
        "ClientToken": spec.client_token,
        "Type": "instant",
        "TargetCapacitySpecification": {
            "TotalTargetCapacity": spec.count,
            "DefaultTargetCapacityType": spec.market,
        },
        options: {"AllocationStrategy": spec.allocation_strategy},
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": template.template_id,
                    "Version": str(template.version),
                },
                "Overrides": [_override(o) for o in spec.overrides],
            }
        ],
        "TagSpecifications": merge_tags(
            None, tags, resource_types=TAGGED_BY_FLEET, precedence="ours"
        ),
    }
