"""What each EC2 instance type offers (vCPUs, memory, GPUs, architectures), offline: the
instance-type data file moto ships (the same DescribeInstanceTypes answers the emulator
serves), read as data without importing moto. Used to resolve ``instance_requirements``
and to check that every type of a node type offers its declared ``resources``."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steadyscale.config.fleet import InstanceRequirements

_DATA = ("ec2", "resources", "instance_types.json.gz")


@dataclass(frozen=True)
class TypeInfo:
    """What one instance type offers."""

    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    architectures: tuple[str, ...]
    current: bool

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


@functools.cache
def _raw() -> dict[str, Any]:
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations)), *_DATA)
    with gzip.open(path, "rt", encoding="utf-8") as text:
        data: dict[str, Any] = json.load(text)
    return data


def _info(name: str, raw: Mapping[str, Any]) -> TypeInfo:
    gpus = sum(int(g.get("Count", 0)) for g in (raw.get("GpuInfo") or {}).get("Gpus", []))
    return TypeInfo(
        name=name,
        vcpus=int((raw.get("VCpuInfo") or {}).get("DefaultVCpus", 0)),
        memory_mib=int((raw.get("MemoryInfo") or {}).get("SizeInMiB", 0)),
        gpus=gpus,
        architectures=tuple((raw.get("ProcessorInfo") or {}).get("SupportedArchitectures", [])),
        current=bool(raw.get("CurrentGeneration", False)),
    )


@functools.cache
def instance_types() -> dict[str, TypeInfo]:
    """Every instance type the data knows, by name."""
    return {name: _info(name, raw) for name, raw in _raw().items()}


def type_info(name: str) -> TypeInfo | None:
    return instance_types().get(name)


def shortfall(info: TypeInfo, resources: Mapping[str, float]) -> str | None:
    """What a type lacks of a node type's declared resources (``CPU`` against vCPUs,
    ``GPU`` against GPUs, ``memory`` against MiB; other resources are the user's), if any."""
    offered = {"cpu": info.vcpus, "gpu": info.gpus, "memory": info.memory_mib}
    for name, amount in resources.items():
        has = offered.get(name.lower())
        if has is not None and has < amount:
            return f"{name}: {amount:g} declared, {info.name} has {has}"
    return None


@functools.cache
def resolve_requirements(requirements: InstanceRequirements) -> tuple[str, ...]:
    """The types meeting ``requirements``, smallest first (vCPUs, then memory, then name),
    at most ``max_types``. (The data's generation flag is not reliable enough to filter on:
    it calls m5 previous-generation; families narrow the choice instead.)"""
    chosen = [
        info
        for info in instance_types().values()
        if requirements.vcpus.holds(info.vcpus)
        and requirements.memory_mib.holds(info.memory_mib)
        and requirements.gpus.holds(info.gpus)
        and requirements.architecture in info.architectures
        and (not requirements.include_families or info.family in requirements.include_families)
        and info.family not in requirements.exclude_families
    ]
    chosen.sort(key=lambda i: (i.vcpus, i.memory_mib, i.name))
    return tuple(i.name for i in chosen[: requirements.max_types])
