"""Fleet node types in the config: instance_types, instance_requirements resolved offline,
allocation strategies per market, launch templates; each bad one is one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.config import parse_config
from steadyscale.config.fleet import content_hash, template_data
from steadyscale.config.instance_data import type_info
from steadyscale.errors import ConfigError


def _fleet(**node: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "node_config": {"ImageId": "ami-1"},
        "resources": {"CPU": 2},
        "market": "spot",
        "instance_types": ["m5.large", "m5a.large", "m6i.large"],
    }
    spec.update(node)
    return {
        "cluster_name": "c",
        "provider": {"type": "aws", "region": "us-east-1", "subnets": ["subnet-1", "subnet-2"]},
        "available_node_types": {"cpu": spec},
    }


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_fleet_node_type_has_its_types_and_spot_default_strategy() -> None:
    node_type = parse_config(_fleet()).available_node_types["cpu"]
    assert node_type.is_fleet
    assert node_type.fleet_types() == ("m5.large", "m5a.large", "m6i.large")
    assert node_type.strategy == "price-capacity-optimized"
    assert node_type.instance_type == "m5.large"


def test_a_single_instance_type_is_no_fleet() -> None:
    data = _fleet()
    spec = data["available_node_types"]["cpu"]
    del spec["instance_types"]
    spec["node_config"]["InstanceType"] = "m5.large"
    node_type = parse_config(data).available_node_types["cpu"]
    assert not node_type.is_fleet
    assert node_type.fleet_types() == ("m5.large",)


def test_a_type_short_of_the_declared_resources_is_named() -> None:
    message = _error(_fleet(resources={"CPU": 4}))
    assert message == (
        "available_node_types.cpu.instance_types: m5.large does not offer the node type's "
        "resources (CPU: 4 declared, m5.large has 2); drop it or lower resources"
    )


def test_a_gpu_resource_needs_gpus_on_every_type() -> None:
    message = _error(
        _fleet(resources={"CPU": 4, "GPU": 1}, instance_types=["g4dn.xlarge", "m5.xlarge"])
    )
    assert "m5.xlarge does not offer" in message and "GPU: 1 declared" in message


def test_an_unknown_type_is_named() -> None:
    message = _error(_fleet(instance_types=["m5.large", "m5.hyuge"]))
    assert "unknown instance type 'm5.hyuge'" in message


def test_strategies_belong_to_their_market() -> None:
    assert "not one of spot's" in _error(_fleet(allocation_strategy="prioritized"))
    data = _fleet(market="on-demand", allocation_strategy="prioritized")
    assert parse_config(data).available_node_types["cpu"].strategy == "prioritized"
    assert "not one of on-demand's" in _error(
        _fleet(market="on-demand", allocation_strategy="capacity-optimized")
    )


def test_instance_type_and_instance_types_exclude_each_other() -> None:
    data = _fleet()
    data["available_node_types"]["cpu"]["node_config"]["InstanceType"] = "m5.large"
    assert "exclude each other" in _error(data)


def test_fleet_keys_need_a_fleet() -> None:
    data = _fleet(allocation_strategy="lowest-price")
    spec = data["available_node_types"]["cpu"]
    del spec["instance_types"]
    spec["node_config"]["InstanceType"] = "m5.large"
    assert "allocation_strategy is for fleet node types" in _error(data)


def test_requirements_resolve_offline_smallest_first() -> None:
    data = _fleet(
        instance_types=None,
        instance_requirements={
            "vcpus": {"min": 2, "max": 2},
            "memory_mib": {"min": 8192, "max": 8192},
            "include_families": ["m5", "m5a", "m6i", "m7i"],
        },
    )
    types = parse_config(data).available_node_types["cpu"].fleet_types()
    assert set(types) == {"m5.large", "m5a.large", "m6i.large", "m7i.large"}
    for name in types:
        info = type_info(name)
        assert info is not None and info.vcpus == 2 and info.memory_mib == 8192


def test_requirements_nothing_meets_is_refused() -> None:
    data = _fleet(instance_types=None, instance_requirements={"vcpus": {"min": 10000}})
    assert "no instance type meets these requirements" in _error(data)


def test_a_user_template_needs_no_image() -> None:
    data = _fleet(launch_template={"name": "mine", "version": 3})
    data["available_node_types"]["cpu"]["node_config"] = {}
    node_type = parse_config(data).available_node_types["cpu"]
    assert node_type.launch_template is not None and node_type.launch_template.version == 3


def test_node_config_must_fit_a_launch_template() -> None:
    data = _fleet()
    data["available_node_types"]["cpu"]["node_config"]["MaxCountish"] = 1
    assert _error(data).startswith("available_node_types.cpu.node_config: ")


def test_template_data_moves_the_subnet_out_and_encodes_user_data() -> None:
    data = template_data({"ImageId": "ami-1", "SubnetId": "subnet-9", "UserData": "hi"})
    assert data == {"ImageId": "ami-1", "UserData": "aGk="}
    assert content_hash(data) == content_hash(dict(reversed(list(data.items()))))
    assert content_hash(data) != content_hash({**data, "KeyName": "k"})


def test_validate_prints_the_resolved_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _fleet()
    data["provider"] = {"type": "emulator"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "cpu (fleet, 0-10)" in out
    assert (
        "cpu: CreateFleet spot price-capacity-optimized over m5.large, m5a.large, m6i.large" in out
    )
