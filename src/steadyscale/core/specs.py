"""What the core reads of a cluster config, as read-only protocols.

The pydantic models in ``steadyscale.config`` satisfy them structurally, so the core
decides on a ``ClusterConfig`` without importing it (and tests may pass any lookalike).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class HealthCheckSpec(Protocol):
    """The probe a node type's nodes must pass to be ready (as the reconciler names it)."""

    @property
    def port(self) -> int: ...

    @property
    def path(self) -> str | None: ...  # None: a TCP connect


class NodeTypeSpec(Protocol):
    """One kind of worker: what it offers, how many may run, how it is preferred."""

    @property
    def resources(self) -> Mapping[str, float]: ...

    @property
    def min_workers(self) -> int: ...

    @property
    def max_workers(self) -> int: ...

    @property
    def priority(self) -> int: ...  # higher wins when types fit demand equally well

    @property
    def health_check(self) -> HealthCheckSpec | None: ...


class ClusterSpec(Protocol):
    """The cluster-wide limits and timings the reconciler and the scheduler decide by."""

    @property
    def cluster_name(self) -> str: ...

    @property
    def max_workers(self) -> int: ...

    @property
    def upscaling_speed(self) -> float: ...

    @property
    def idle_timeout_seconds(self) -> float: ...

    @property
    def visibility_timeout_seconds(self) -> float: ...

    @property
    def available_node_types(self) -> Mapping[str, NodeTypeSpec]: ...
