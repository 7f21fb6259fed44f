"""The core reads a cluster config through protocols that the config models satisfy."""

from __future__ import annotations

import ast
from pathlib import Path

import steadyscale.core
from steadyscale.core.specs import ClusterSpec, NodeTypeSpec
from tests.cluster import cluster_config


def test_the_config_models_satisfy_the_core_specs() -> None:
    # Typed assignments: mypy --strict checks the structural match; the reads check it here.
    config = cluster_config(
        available_node_types={
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "health_check": {"port": 8080, "path": "/ready"},
            }
        }
    )
    spec: ClusterSpec = config
    node_type: NodeTypeSpec = spec.available_node_types["cpu"]
    assert (spec.cluster_name, spec.idle_timeout_seconds) == ("test", 60.0)
    assert node_type.resources == {"CPU": 2}
    assert node_type.health_check is not None and node_type.health_check.path == "/ready"


def test_the_core_imports_nothing_of_ours_but_errors() -> None:
    package = Path(steadyscale.core.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith("steadyscale"):
                    assert name.startswith(("steadyscale.core", "steadyscale.errors")), (
                        f"{module.name} imports {name}"
                    )
