"""A node type's ``scale_down`` and ``drain:`` keys: defaults as before, hooks checked
(one of command or http, known placeholders), each bad one a line naming the key path."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.app.loading import parse_cluster_config
from steadyscale.config import parse_config
from steadyscale.errors import ConfigError


def _with(**node_type: Any) -> dict[str, Any]:
    return {
        "cluster_name": "c",
        "provider": {"type": "aws", "region": "eu-west-1", "subnets": ["subnet-1"]},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-1"},
                "resources": {"CPU": 2},
                **node_type,
            },
        },
    }


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_without_the_keys_nodes_scale_down_packed_and_do_not_drain() -> None:
    cpu = parse_config(_with()).available_node_types["cpu"]
    assert cpu.scale_down == "packed" and cpu.drain is None


def test_a_drain_block_takes_its_defaults() -> None:
    cpu = parse_config(
        _with(
            scale_down="reported",
            drain={"hook": {"http": {"url": "http://127.0.0.1:9/drain/{instance_id}"}}},
        )
    ).available_node_types["cpu"]
    assert cpu.scale_down == "reported" and cpu.drain is not None
    assert cpu.drain.hook_timeout_seconds == 30 and cpu.drain.timeout_seconds == 300
    assert cpu.drain.hook is not None and cpu.drain.hook.http is not None
    assert cpu.drain.hook.http.method == "POST"


@pytest.mark.parametrize(
    ("drain", "said"),
    [
        ({"hook": {}}, "set exactly one of command or http"),
        (
            {"hook": {"command": ["true"], "http": {"url": "http://h/"}}},
            "set exactly one of command or http",
        ),
        ({"hook": {"command": []}}, "give the command as a list"),
        ({"hook": {"http": {"url": "ftp://h/{node_id}"}}}, "give an http:// or https:// URL"),
        ({"hook": {"http": {"url": "http://h/{ip}"}}}, "unknown placeholder {ip}"),
        ({"hook": {"command": ["drain", "{host"]}}, "write a literal brace"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
    ],
)
def test_a_bad_drain_is_one_line_naming_its_key(drain: dict[str, Any], said: str) -> None:
    message = _error(_with(drain=drain))
    assert "available_node_types.cpu.drain" in message and said in message


def test_an_unknown_scale_down_mode_is_refused() -> None:
    message = _error(_with(scale_down="busiest"))
    assert "available_node_types.cpu.scale_down" in message
