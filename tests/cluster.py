"""A cluster harness: the real autoscaler, provider and ledger against the emulator, all on
one fake clock, so a scenario of minutes runs in seconds and never sleeps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from steadyscale.app.runtime import (
    build_health,
    build_memory_provider,
    build_metrics,
    build_provider,
    endpoint_prober,
    memory_prober,
)
from steadyscale.config import ClusterConfig, parse_config
from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.ec2model.calllog import CallLog
from steadyscale.emulator import Emulator, EmulatorSettings, TrackedInstance, build_settings
from steadyscale.loop.autoscaler import Autoscaler, TickReport
from steadyscale.loop.inbox import Inbox
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.memory import MemoryProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import Ledger

QUIET_ERRORS = {
    "server_error_probability": 0,
    "lost_response_probability": 0,
    "timeout_probability": 0,
}


def cluster_config(**overrides: Any) -> ClusterConfig:
    data: dict[str, Any] = {
        "cluster_name": "test",
        "max_workers": 500,
        "upscaling_speed": 1000,
        "idle_timeout_minutes": 1,
        "loop_interval_seconds": 5,
        "provider": {"type": "emulator"},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 500,
            },
        },
    }
    data.update(overrides)
    return parse_config(data)


class GroundTruth(Protocol):
    """What a harness reads the truth from: the emulator, or the in-memory backend."""

    def truth(self, *, include_gone: bool = ...) -> list[TrackedInstance]: ...

    @property
    def calls(self) -> CallLog: ...


@dataclass
class Harness:
    """The autoscaler on a fake clock, whichever backend it runs on."""

    clock: FakeClock
    autoscaler: Autoscaler
    ledger: Ledger
    config: ClusterConfig
    reports: list[TickReport] = field(default_factory=list)

    def backend(self) -> GroundTruth:
        raise NotImplementedError

    def demand(self, count: int, bundle: dict[str, float] | None = None) -> None:
        items = [DemandItem(bundle=bundle or {"CPU": 2}, count=count)] if count else []
        self.ledger.set_demand(items, self.clock.now())

    def tick(self) -> TickReport:
        report = self.autoscaler.tick()
        self.reports.append(report)
        self.clock.advance(self.config.loop_interval_seconds)
        return report

    def run(
        self,
        until: Callable[[TickReport], bool],
        max_ticks: int = 200,
        each: Callable[[Self], None] | None = None,
    ) -> TickReport:
        for _ in range(max_ticks):
            report = self.tick()
            if each is not None:
                each(self)
            if until(report):
                return report
        raise AssertionError(f"no convergence in {max_ticks} ticks; last: {self.reports[-1]}")

    def truth(self, include_gone: bool = True) -> list[TrackedInstance]:
        return [
            i
            for i in self.backend().truth(include_gone=include_gone)
            if i.tags.get(TAG_CLUSTER) == self.config.cluster_name
        ]

    def alive(self) -> list[TrackedInstance]:
        return [i for i in self.truth() if i.state.value != "terminated"]

    def running_truth(self) -> int:
        return sum(1 for i in self.truth() if i.state.value == "running")

    def count(self, status: Status) -> int:
        return sum(1 for r in self.autoscaler.records.values() if r.status is status)

    def launches(self) -> int:
        return self.backend().calls.count("RunInstances", "ok")


@dataclass
class Cluster(Harness):
    """On the emulator, over HTTP with the boto3 provider."""

    emulator: Emulator = field(kw_only=True)
    provider: EC2Provider = field(kw_only=True)

    def backend(self) -> GroundTruth:
        return self.emulator


@dataclass
class MemoryCluster(Harness):
    """On the in-memory backend: the same model, no HTTP."""

    memory: MemoryProvider = field(kw_only=True)

    def backend(self) -> GroundTruth:
        return self.memory


def _settings(
    profile: str, emulator: dict[str, Any] | None, quiet_errors: bool
) -> EmulatorSettings:
    overrides: dict[str, Any] = {"spot": {"interruption_rate_per_hour": 0}}
    if quiet_errors:
        overrides["errors"] = QUIET_ERRORS
    overrides.update(emulator or {})
    return build_settings(profile=profile, overrides=overrides)


def make_cluster(
    profile: str = "realistic",
    *,
    emulator: dict[str, Any] | None = None,
    quiet_errors: bool = True,
    ledger_path: str = ":memory:",
    inbox_for: Callable[[Emulator], Inbox] | None = None,
    **config: Any,
) -> Cluster:
    """``inbox_for``: the events inbox of the started emulator (its SQS), if any."""
    clock = FakeClock(1_000_000.0)
    emu = Emulator(_settings(profile, emulator, quiet_errors), clock=clock).start()
    cfg = cluster_config(**config)
    metrics = build_metrics(cfg, clock)
    provider = build_provider(cfg, clock, endpoint_url=emu.endpoint_url, observer=metrics.api_call)
    ledger = Ledger(ledger_path)
    health = build_health(endpoint_prober(cfg, emu.endpoint_url), clock, metrics)
    return Cluster(
        emulator=emu,
        provider=provider,
        clock=clock,
        autoscaler=Autoscaler(
            cfg,
            provider,
            ledger,
            clock,
            metrics=metrics,
            health=health,
            inbox=inbox_for(emu) if inbox_for is not None else None,
        ),
        ledger=ledger,
        config=cfg,
    )


def make_memory_cluster(
    profile: str = "realistic",
    *,
    emulator: dict[str, Any] | None = None,
    quiet_errors: bool = True,
    inbox: Inbox | None = None,
    ledger_path: str = ":memory:",
    **config: Any,
) -> MemoryCluster:
    """Like ``make_cluster``, on the in-memory backend with the same model settings."""
    clock = FakeClock(1_000_000.0)
    cfg = cluster_config(**{"provider": {"type": "memory"}, **config})
    metrics = build_metrics(cfg, clock)
    memory = build_memory_provider(
        cfg, clock, _settings(profile, emulator, quiet_errors), observer=metrics.api_call
    )
    ledger = Ledger(ledger_path)
    # Probes go to the memory model, as the runtime sends them for a memory config.
    health = build_health(memory_prober(cfg, memory), clock, metrics)
    return MemoryCluster(
        memory=memory,
        clock=clock,
        autoscaler=Autoscaler(
            cfg, memory, ledger, clock, metrics=metrics, health=health, inbox=inbox
        ),
        ledger=ledger,
        config=cfg,
    )
