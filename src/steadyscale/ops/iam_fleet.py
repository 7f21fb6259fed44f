"""The IAM statements of fleet launches and prices, as the provider uses them: CreateFleet
(which EC2 authorises as RunInstances on the instances and volumes too, and CreateTags with
ec2:CreateAction = CreateFleet), the launch-template calls on the cluster's own templates
(or read-only on one the user names), and DescribeSpotPriceHistory for a spot node type's
node prices. PassRole stays ``iam``'s: an instance profile in a template is passed alike."""

from __future__ import annotations

from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.core.instances import TAG_CLUSTER


def _arn(region: str, resource: str) -> str:
    return f"arn:aws:ec2:{region}:*:{resource}"


def _templates(config: ClusterConfig) -> tuple[list[str], list[str]]:
    """ARNs of the templates steadyscale makes (by name, as ``loop.templates`` names them:
    scoped by the cluster tag, which CreateLaunchTemplate carries) and of those users name."""
    region = config.provider.region
    fleets = [t for t in config.available_node_types.values() if t.is_fleet]
    named = sorted({t.launch_template.name for t in fleets if t.launch_template is not None})
    ours = any(t.launch_template is None for t in fleets)
    return ([_arn(region, "launch-template/*")] if ours else []), (
        [_arn(region, "launch-template/*")] if named else []
    )


def fleet_statements(config: ClusterConfig, tag_value: str | list[str]) -> list[dict[str, Any]]:
    """The statements fleet node types (and spot prices) need; none without them."""
    region = config.provider.region
    types = config.available_node_types.values()
    statements: list[dict[str, Any]] = []
    if any(t.market == "spot" for t in types):
        statements.append(
            {
                # A spot node's hourly price, recorded at launch. Describe: no scoping.
                "Sid": "SpotPrices",
                "Effect": "Allow",
                "Action": "ec2:DescribeSpotPriceHistory",
                "Resource": "*",
            }
        )
    if not any(t.is_fleet for t in types):
        return statements
    ours, named = _templates(config)
    statements += _fleet_launch(region, tag_value, sorted(set(ours + named)))
    statements.append(
        {
            "Sid": "DescribeLaunchTemplates",
            "Effect": "Allow",
            "Action": "ec2:DescribeLaunchTemplateVersions",
            "Resource": "*",
        }
    )
    if ours:
        statements.append(
            {
                "Sid": "ClusterLaunchTemplates",
                "Effect": "Allow",
                "Action": ["ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion"],
                "Resource": ours,
            }
        )
    return statements


def _fleet_launch(
    region: str, tag_value: str | list[str], templates: list[str]
) -> list[dict[str, Any]]:
    """CreateFleet (authorised as RunInstances too) under the cluster tag, from the
    templates into any of the region's launch resources, tagged only at launch."""
    return [
        {
            "Sid": "FleetOnlyWithClusterTag",
            "Effect": "Allow",
            "Action": ["ec2:CreateFleet", "ec2:RunInstances"],
            "Resource": [_arn(region, "fleet/*"), _arn(region, "instance/*")],
            "Condition": {"StringEquals": {f"aws:RequestTag/{TAG_CLUSTER}": tag_value}},
        },
        {
            # What the fleet's instances are launched from and into.
            "Sid": "FleetLaunchResources",
            "Effect": "Allow",
            "Action": ["ec2:CreateFleet", "ec2:RunInstances"],
            "Resource": [
                *templates,
                _arn(region, "volume/*"),
                _arn(region, "subnet/*"),
                _arn(region, "network-interface/*"),
                _arn(region, "security-group/*"),
                _arn(region, "key-pair/*"),
                _arn(region, "spot-instances-request/*"),
                f"arn:aws:ec2:{region}::image/*",
            ],
        },
        {
            "Sid": "TagOnlyAtFleetLaunch",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [
                _arn(region, f"{t}/*") for t in ("fleet", "instance", "launch-template", "volume")
            ],
            "Condition": {
                "StringEquals": {
                    "ec2:CreateAction": ["CreateFleet", "RunInstances", "CreateLaunchTemplate"]
                }
            },
        },
    ]
