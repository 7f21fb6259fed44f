"""EC2's instance types as moto ships them (vCPUs for the model's limits), read as a data
file: found where moto is installed, without running any of moto's code, so the in-memory
backend and the simulator never import moto (only the emulator does)."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

_CATALOGUE = ("ec2", "resources", "instance_types.json.gz")


def _moto_data_file(*parts: str) -> Path:
    """A data file of the installed moto. ``find_spec`` of a top-level package locates it
    without importing it (``importlib.resources.files("moto")`` would run moto's
    ``__init__``, and with it moto's core)."""
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("moto is not installed", name="moto")
    return Path(next(iter(spec.submodule_search_locations)), *parts)


@functools.cache
def _instance_type_catalogue() -> dict[str, Any]:
    with gzip.open(_moto_data_file(*_CATALOGUE), "rt", encoding="utf-8") as text:
        catalogue: dict[str, Any] = json.load(text)
    return catalogue


def instance_vcpus(instance_type: str) -> int:
    """vCPUs of an instance type (1 when the catalogue does not know it)."""
    info = _instance_type_catalogue().get(instance_type) or {}
    return int(info.get("VCpuInfo", {}).get("DefaultVCpus", 1))
