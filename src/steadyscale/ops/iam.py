"""The least-privilege IAM policy a cluster config needs (``steadyscale iam-policy``).

It grants exactly the calls the EC2 provider makes (``providers/aws.py``) for this config,
scoped by the cluster tag where EC2 can check it: launches must carry the cluster tag on
the instance and its volumes (aws:RequestTag), tags may only be written by RunInstances
itself (ec2:CreateAction), and only instances carrying the cluster tag can be terminated
(ec2:ResourceTag). EC2's Describe actions take no resource-level scoping, so they are on
"*". A test runs a full cycle on the emulator and checks the call log against this policy.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.ops.iam_fleet import fleet_statements
from steadyscale.providers.wire import TAGGED_AT_LAUNCH

POLICY_VERSION = "2012-10-17"


def _ec2_arn(region: str, resource: str, *, account: str = "*") -> str:
    return f"arn:aws:ec2:{region}:{account}:{resource}"


def _node_configs(config: ClusterConfig, *, fleets: bool = False) -> list[dict[str, Any]]:
    """The node configs of the single-type node types (RunInstances'), or of every one."""
    return [t.node_config for t in config.available_node_types.values() if fleets or not t.is_fleet]


def _launch_resources(config: ClusterConfig) -> list[str]:
    """What RunInstances touches besides the tagged instance and volumes: the AMIs, the
    subnets, the network interface it creates, security groups, key pairs, templates."""
    region = config.provider.region
    nodes = _node_configs(config)
    images = sorted({str(n["ImageId"]) for n in nodes})
    resources = [_ec2_arn(region, f"image/{image}", account="") for image in images]
    subnets = set(config.provider.subnets)
    for node in nodes:
        if "SubnetId" in node:
            subnets.add(str(node["SubnetId"]))
        for interface in node.get("NetworkInterfaces") or []:
            if "SubnetId" in interface:
                subnets.add(str(interface["SubnetId"]))
    # Without subnets, EC2 picks the default VPC's: any subnet then.
    resources += [_ec2_arn(region, f"subnet/{s}") for s in sorted(subnets)] or [
        _ec2_arn(region, "subnet/*")
    ]
    resources.append(_ec2_arn(region, "network-interface/*"))
    groups: set[str] = set()
    any_group = False
    for node in nodes:
        ids = list(node.get("SecurityGroupIds") or [])
        for interface in node.get("NetworkInterfaces") or []:
            ids += list(interface.get("Groups") or [])
        groups.update(str(g) for g in ids)
        # Groups by name, or none (the VPC's default group): not known by id here.
        any_group = any_group or not ids or bool(node.get("SecurityGroups"))
    resources += (
        [_ec2_arn(region, "security-group/*")]
        if any_group
        else [_ec2_arn(region, f"security-group/{g}") for g in sorted(groups)]
    )
    keys = sorted({str(n["KeyName"]) for n in nodes if n.get("KeyName")})
    resources += [_ec2_arn(region, f"key-pair/{k}") for k in keys]
    templates = sorted(
        {
            str((n.get("LaunchTemplate") or {}).get("LaunchTemplateId", "*"))
            for n in nodes
            if n.get("LaunchTemplate")
        }
    )
    resources += [_ec2_arn(region, f"launch-template/{t}") for t in templates]
    if any(t.market == "spot" for t in config.available_node_types.values()):
        resources.append(_ec2_arn(region, "spot-instances-request/*"))
    return resources


def _tagged_resource_types(config: ClusterConfig) -> list[str]:
    """Resource types RunInstances tags: ours, and any the node configs add."""
    types = set(TAGGED_AT_LAUNCH)
    for node in _node_configs(config):
        for spec in node.get("TagSpecifications") or []:
            if spec.get("ResourceType"):
                types.add(str(spec["ResourceType"]))
    return sorted(types)


def _pass_role(config: ClusterConfig) -> dict[str, Any] | None:
    """iam:PassRole for the instance profiles' roles, only when a node type has one.

    EC2 names the instance profile, not its role, so the role is scoped by account (when
    the profile is given by ARN) and by the service it is passed to.
    """
    profiles = [
        n["IamInstanceProfile"]
        for n in _node_configs(config, fleets=True)
        if n.get("IamInstanceProfile")
    ]
    if not profiles:
        return None
    accounts = sorted(
        {
            str(p["Arn"]).split(":")[4] if str(p.get("Arn", "")).count(":") >= 5 else "*"
            for p in profiles
        }
    )
    if "*" in accounts:
        accounts = ["*"]
    return {
        "Sid": "PassInstanceProfileRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": [f"arn:aws:iam::{a}:role/*" for a in accounts],
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
    }


def build_policy(config: ClusterConfig, former_names: Collection[str] = ()) -> dict[str, Any]:
    """The IAM policy document (as a dict) the daemon needs for ``config``.

    ``former_names``: cluster names the ledger's live nodes were launched under before the
    cluster was carried over to its name; their instances keep that tag (EC2 cannot change
    it), so the daemon must still terminate them, and resend their launches under it."""
    region = config.provider.region
    names = [config.cluster_name, *sorted(set(former_names) - {config.cluster_name})]
    tag_value: str | list[str] = names[0] if len(names) == 1 else names
    describe = {
        # DescribeInstances: the cluster listing, lookups by id, the start-up check.
        # EC2's Describe actions cannot be scoped to resources.
        "Sid": "DescribeInstances",
        "Effect": "Allow",
        "Action": "ec2:DescribeInstances",
        "Resource": "*",
    }
    terminate = [
        {
            "Sid": "TerminateOnlyClusterInstances",
            "Effect": "Allow",
            "Action": "ec2:TerminateInstances",
            "Resource": _ec2_arn(region, "instance/*"),
            "Condition": {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER}": tag_value}},
        },
    ]
    single = any(not t.is_fleet for t in config.available_node_types.values())
    statements = [
        describe,
        *(_launch_statements(config, tag_value) if single else []),
        *fleet_statements(config, tag_value),
        *terminate,
    ]
    pass_role = _pass_role(config)
    if pass_role is not None:
        statements.append(pass_role)
    return {"Version": POLICY_VERSION, "Statement": statements}


def _launch_statements(config: ClusterConfig, tag_value: str | list[str]) -> list[dict[str, Any]]:
    """RunInstances of the single-type node types: under the cluster tag, into the
    configured resources, tagged only at launch."""
    region = config.provider.region
    cluster_tag = {f"aws:RequestTag/{TAG_CLUSTER}": tag_value}
    return [
        {
            "Sid": "LaunchOnlyWithClusterTag",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [_ec2_arn(region, "instance/*"), _ec2_arn(region, "volume/*")],
            "Condition": {"StringEquals": cluster_tag},
        },
        {
            "Sid": "LaunchResources",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": _launch_resources(config),
        },
        {
            # Tags are set at launch (TagSpecifications), never by a later CreateTags: EC2
            # authorises them as CreateTags with ec2:CreateAction = RunInstances.
            "Sid": "TagOnlyAtLaunch",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [_ec2_arn(region, f"{t}/*") for t in _tagged_resource_types(config)],
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        },
    ]


def policy_actions(policy: dict[str, Any]) -> set[str]:
    """Every action a policy document allows, e.g. {"ec2:RunInstances", ...}."""
    actions: set[str] = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    return actions
