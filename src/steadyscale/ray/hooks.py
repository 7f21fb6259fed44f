"""The hooks Ray calls on the cluster config before any node exists (``bootstrap_config``,
``fillout_available_node_types_resources``), filled from Ray's own AWS defaults.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from steadyscale.errors import ConfigError
from steadyscale.ray.settings import parse_settings


def with_ray_aws_defaults(cluster_config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with what Ray's ``aws/defaults.yaml`` gives a ``type: aws`` YAML.

    For ``type: external`` Ray fills missing keys from a minimal config instead, which
    leaves no commands to start Ray, no ``auth.ssh_user`` and no node configs. Keys that
    are missing or None (and an empty ``auth``) take the installed Ray's AWS defaults, and
    so do node types of the default names without a ``node_config``, except ``resources``:
    those are looked up for the instance type, as Ray's AWS provider does.
    """
    from ray.autoscaler._private.providers import _get_default_config  # noqa: PLC0415

    defaults = _get_default_config({"type": "aws"})
    config = copy.deepcopy(dict(cluster_config))
    for key, value in defaults.items():
        if key == "provider":
            continue
        if config.get(key) is None or (key == "auth" and not config[key]):
            config[key] = value
    default_types = defaults.get("available_node_types", {})
    for name, node_type in (config.get("available_node_types") or {}).items():
        default_type = default_types.get(name)
        if default_type is None or node_type.get("node_config") is not None:
            continue
        for key, value in default_type.items():
            if key != "resources":
                node_type.setdefault(key, copy.deepcopy(value))
    return config


def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
    """Ray's AWS defaults for what the YAML leaves out, then Ray's AWS setup (IAM role,
    key pair, subnets, security group) on real AWS; against an ``endpoint_url`` (the
    emulator) the setup is skipped."""
    provider = cluster_config.get("provider", {})
    parse_settings(provider)
    cluster_config = with_ray_aws_defaults(cluster_config)
    if provider.get("endpoint_url"):
        return cluster_config
    from ray.autoscaler._private.aws.config import bootstrap_aws  # noqa: PLC0415

    result: dict[str, Any] = bootstrap_aws(cluster_config)
    return result


def fillout_available_node_types_resources(cluster_config: dict[str, Any]) -> dict[str, Any]:
    """Resources from the instance types, as Ray's AWS provider does, when not given.
    Ray calls this before ``bootstrap_config``, so Ray's AWS defaults are filled here too."""
    cluster_config = with_ray_aws_defaults(cluster_config)
    types = cluster_config.get("available_node_types", {})
    missing = [name for name, node_type in types.items() if "resources" not in node_type]
    if not missing:
        return cluster_config
    if cluster_config.get("provider", {}).get("endpoint_url"):
        # Ray's lookup of instance types would go to AWS itself, not to the endpoint.
        raise ConfigError(
            "required with provider.endpoint_url; set the node type's resources, e.g. {CPU: 2}",
            path=f"available_node_types.{missing[0]}.resources",
        )
    from ray.autoscaler._private.aws.node_provider import (  # noqa: PLC0415
        AWSNodeProvider,
    )

    result: dict[str, Any] = AWSNodeProvider.fillout_available_node_types_resources(cluster_config)
    return result
