"""EC2's instance types as moto ships them (vCPUs for the model's limits), read as a data
file without importing moto's EC2 models (which takes a second)."""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import json
from typing import Any


@functools.cache
def _instance_type_catalogue() -> dict[str, Any]:
    resource = importlib.resources.files("moto") / "ec2" / "resources" / "instance_types.json.gz"
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        catalogue: dict[str, Any] = json.load(text)
    return catalogue


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of an instance type (1 when the catalogue does not know it)."""
    info = _instance_type_catalogue().get(instance_type) or {}
    return int(info.get("VCpuInfo", {}).get("DefaultVCpus", 1))
