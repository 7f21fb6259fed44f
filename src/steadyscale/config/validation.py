"""What a model alone cannot check: instance types and RunInstances parameters, against
botocore's own model of EC2 (offline, no call is made).
"""

from __future__ import annotations

import functools
from typing import Any

from steadyscale.config.fleet import MAX_OVERRIDES, template_data
from steadyscale.config.instance_data import shortfall, type_info
from steadyscale.config.models import ClusterConfig
from steadyscale.config.node_types import NodeType
from steadyscale.errors import ConfigError


@functools.cache
def _ec2_model() -> Any:
    import botocore.session  # noqa: PLC0415 - a second to load; only validation needs it

    return botocore.session.get_session().get_service_model("ec2")


@functools.cache
def known_instance_types() -> frozenset[str]:
    """Instance types EC2 knows, as botocore's model of EC2 lists them."""
    return frozenset(_ec2_model().shape_for("InstanceType").enum)


@functools.cache
def ec2_actions() -> frozenset[str]:
    """The names of EC2's API actions (RunInstances, ...), as botocore's model lists them."""
    return frozenset(_ec2_model().operation_names)


def run_instances_problem(node_config: dict[str, Any]) -> str | None:
    """What EC2's RunInstances would refuse in ``node_config`` before sending it, if any."""
    from botocore.validate import ParamValidator  # noqa: PLC0415

    shape = _ec2_model().operation_model("RunInstances").input_shape
    if shape is None:
        return None
    params = {**node_config, "MinCount": 1, "MaxCount": 1}
    report = ParamValidator().validate(params, shape)
    if not report.has_errors():
        return None
    lines = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
    return "; ".join(lines)


def launch_template_problem(node_config: dict[str, Any]) -> str | None:
    """What CreateLaunchTemplate would refuse in a fleet node type's ``node_config``."""
    from botocore.validate import ParamValidator  # noqa: PLC0415

    shape = _ec2_model().operation_model("CreateLaunchTemplate").input_shape
    if shape is None:
        return None
    params = {"LaunchTemplateName": "check", "LaunchTemplateData": template_data(node_config)}
    report = ParamValidator().validate(params, shape)
    if not report.has_errors():
        return None
    lines = [line.strip() for line in report.generate_report().splitlines() if line.strip()]
    return "; ".join(lines)


def fleet_problem(name: str, node_type: NodeType, subnets: int) -> str | None:
    """What is wrong with a fleet node type's instance types, if anything: each must be
    known to EC2 and offer the node type's declared resources."""
    where = f"available_node_types.{name}"
    types = node_type.fleet_types()
    key = "instance_types" if node_type.instance_types is not None else "instance_requirements"
    if not types:
        return f"{where}.{key}: no instance type meets these requirements; widen them"
    for instance_type in types:
        info = type_info(instance_type)
        if instance_type not in known_instance_types() or info is None:
            return (
                f"{where}.{key}: unknown instance type {instance_type!r} (check the spelling, "
                "e.g. m5.large)"
            )
        lacking = shortfall(info, node_type.resources)
        if lacking:
            return (
                f"{where}.{key}: {instance_type} does not offer the node type's resources "
                f"({lacking}); drop it or lower resources"
            )
    if len(types) * max(subnets, 1) > MAX_OVERRIDES:
        return (
            f"{where}.{key}: {len(types)} types x {subnets} subnets exceed CreateFleet's "
            f"{MAX_OVERRIDES} overrides; name fewer"
        )
    if node_type.launch_template is None:
        problem = launch_template_problem(node_type.node_config)
        if problem:
            return f"{where}.node_config: {problem}"
    return None


def check_node_types(config: ClusterConfig, *, source: str = "") -> None:
    """Raise ``ConfigError`` naming the first node type EC2 would refuse to launch."""
    known = known_instance_types()
    prefix = f"{source}: " if source else ""
    for name, node_type in config.available_node_types.items():
        if node_type.is_fleet:
            fleet = fleet_problem(name, node_type, len(config.provider.subnets))
            if fleet:
                raise ConfigError(prefix + fleet)
            continue
        if node_type.instance_type not in known:
            raise ConfigError(
                f"{prefix}available_node_types.{name}.node_config.InstanceType: unknown "
                f"instance type {node_type.instance_type!r} (check the spelling, e.g. m5.large)"
            )
        problem = run_instances_problem(node_type.node_config)
        if problem:
            raise ConfigError(f"{prefix}available_node_types.{name}.node_config: {problem}")
