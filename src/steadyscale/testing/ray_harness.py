"""Ray's own ``StandardAutoscaler`` driving a node provider against the EC2 emulator.

One scenario: ask for N workers, update until N run, then ask for 0 and update until none
is left, all in the emulator's scaled time. Node updaters are disabled, so nothing is ever
run on a node and no address is contacted; drains are skipped because no node reports to
Ray. The same scenario drives Ray's built-in AWS provider (pointed at the emulator through
``AWS_ENDPOINT_URL_EC2``) or ours, so the tests and ``benchmarks/ray_compare.py`` share it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.autoscaler._private.autoscaler import StandardAutoscaler
from ray.autoscaler._private.load_metrics import LoadMetrics
from ray.autoscaler._private.providers import _clear_provider_cache
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.emulator import Emulator, InstanceState, build_settings

AMI = "ami-12345678"
PROVIDERS = ("ray", "steadyscale")
# Ray's AUTOSCALER_UPDATE_INTERVAL_S: seconds between two updates of its monitor.
RAY_UPDATE_INTERVAL = 5.0
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_EC2", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# EC2's instance actions: the calls the comparison reports.
INSTANCE_ACTIONS = (
    "RunInstances",
    "DescribeInstances",
    "CreateTags",
    "TerminateInstances",
    "StopInstances",
    "StartInstances",
)


class ErrorCounter(logging.Handler):
    """Counts what Ray's autoscaler logs at ERROR or worse (failed updates, exceptions it
    caught from the provider), keeping a few one-line samples."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's own lock: Ray's launcher threads count one at a time.
        self.count += 1
        if len(self.samples) < 5:
            error = record.exc_info[1] if record.exc_info else None
            kind = type(error).__name__ if error is not None else "error"
            detail = str(error) if record.exc_info else record.getMessage()
            self.samples.append(f"{kind}: {(detail.splitlines() or [''])[0][:160]}")


@contextlib.contextmanager
def counting_ray_errors() -> Iterator[ErrorCounter]:
    counter = ErrorCounter()
    ray_logger = logging.getLogger("ray")
    level = ray_logger.level
    ray_logger.setLevel(logging.ERROR)  # Ray logs every update at INFO
    # Ray's own handlers print what its modules log (some at INFO whatever the level above,
    # and each caught error with its traceback): counted here and summed up by the caller
    # instead, so a run's output stays a readable table.
    handlers = {h: h.level for h in ray_logger.handlers}
    for handler in handlers:
        handler.setLevel(logging.CRITICAL + 1)
    watched = logging.getLogger("ray.autoscaler")
    watched.addHandler(counter)
    try:
        yield counter
    finally:
        watched.removeHandler(counter)
        for handler, handler_level in handlers.items():
            handler.setLevel(handler_level)
        ray_logger.setLevel(level)


@contextlib.contextmanager
def aws_endpoint(endpoint_url: str) -> Iterator[None]:
    """Point boto3 (and so Ray's AWS provider) at the emulator with fake credentials."""
    from ray.autoscaler._private.aws import utils  # noqa: PLC0415

    saved = {name: os.environ.get(name) for name in _ENDPOINT_ENV}
    os.environ.update(
        {
            "AWS_ENDPOINT_URL_EC2": endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    utils.resource_cache.cache_clear()  # Ray keeps one boto3 resource per region
    utils.client_cache.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        utils.resource_cache.cache_clear()
        utils.client_cache.cache_clear()


def provider_config(
    kind: str, *, emulator: Emulator, state_dir: Path, region: str = "us-east-1"
) -> dict[str, Any]:
    """The ``provider`` section: Ray's ``type: aws``, or ours, with the same AWS keys."""
    common = {
        "region": region,
        "cache_stopped_nodes": False,
        "disable_node_updaters": True,
        "worker_liveness_check": False,
    }
    if kind == "ray":
        return {"type": "aws", **common}
    if kind == "steadyscale":
        return {
            "type": "external",
            "module": "steadyscale.ray.EC2NodeProvider",
            **common,
            "endpoint_url": emulator.endpoint_url,
            "aws_credentials": {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            "time_scale": emulator.settings.time_scale,
            "state_path": str(state_dir / f"ray-{emulator.port}.sqlite"),
        }
    raise ValueError(f"provider must be one of {PROVIDERS}, not {kind!r}")


def cluster_config(
    name: str, provider: dict[str, Any], *, workers: int, subnet_ids: list[str]
) -> dict[str, Any]:
    """A Ray cluster config (what ``ray up`` would have filled in) with one worker type."""

    def node_type(cpus: int, count: int) -> dict[str, Any]:
        node_config = {"InstanceType": "m5.large", "ImageId": AMI, "SubnetIds": subnet_ids}
        return {
            "node_config": node_config,
            "resources": {"CPU": cpus},
            "min_workers": count,
            "max_workers": count,
        }

    return {
        "cluster_name": name,
        "max_workers": workers,
        "upscaling_speed": 100.0,
        "idle_timeout_minutes": 5,
        "provider": provider,
        "auth": {"ssh_user": "ubuntu"},
        "head_node_type": "head",
        "available_node_types": {"head": node_type(0, 0), "worker": node_type(2, workers)},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        # No command runs anywhere: node updaters are disabled.
        **{
            key: []
            for key in (
                "initialization_commands",
                "setup_commands",
                "head_setup_commands",
                "worker_setup_commands",
                "head_start_ray_commands",
                "worker_start_ray_commands",
            )
        },
    }


@dataclass
class Outcome:
    provider: str
    target: int
    update_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    seconds_to_target: float | None = None  # emulated seconds until `target` ran
    peak_alive: int = 0
    launched: int = 0
    duplicates: int = 0
    leaks: int = 0
    updates: int = 0
    throttled: int = 0  # RequestLimitExceeded answers the emulator gave
    invisible_at_restart: int | None = None  # launched, unlisted when the autoscaler restarted
    api_calls: dict[str, int] = field(default_factory=dict)


class RayScenario:
    """One emulator, one ``StandardAutoscaler`` with ``kind``'s provider; see module doc."""

    def __init__(
        self,
        kind: str,
        *,
        emulator: Emulator,
        state_dir: Path,
        name: str = "bench",
        update_interval: float = RAY_UPDATE_INTERVAL,
    ) -> None:
        self.kind = kind
        self.emulator = emulator
        self.name = f"{name}-{emulator.port}"
        self.update_interval = update_interval
        ec2 = emulator.client()
        subnets = ec2.describe_subnets()["Subnets"]
        self.subnet_ids = [
            s["SubnetId"] for s in sorted(subnets, key=lambda s: s["AvailabilityZone"])
        ][:2]
        self.provider = provider_config(kind, emulator=emulator, state_dir=state_dir)
        self.config = cluster_config(
            self.name, self.provider, workers=0, subnet_ids=self.subnet_ids
        )
        self.outcome = Outcome(provider=kind, target=0)
        self._autoscaler: StandardAutoscaler | None = None

    def _read_config(self) -> dict[str, Any]:
        return copy.deepcopy(self.config)

    def set_workers(self, workers: int) -> None:
        self.config["max_workers"] = workers
        worker = self.config["available_node_types"]["worker"]
        worker["min_workers"] = worker["max_workers"] = workers

    def _cluster(self, *, include_gone: bool) -> list[Any]:
        """The cluster's workers, by the emulator's ground truth."""
        return [
            i
            for i in self.emulator.truth(include_gone=include_gone)
            if i.tags.get(TAG_RAY_CLUSTER_NAME) == self.name
            and i.tags.get(TAG_RAY_NODE_KIND) == NODE_KIND_WORKER
        ]

    def start_head(self, max_seconds: float = 600.0) -> str:
        """The head node, as ``ray up`` leaves it: running and listed by its tags."""
        ec2 = self.emulator.client(retries={"mode": "standard", "total_max_attempts": 20})
        tags = {
            TAG_RAY_CLUSTER_NAME: self.name,
            TAG_RAY_NODE_KIND: NODE_KIND_HEAD,
            TAG_RAY_USER_NODE_TYPE: "head",
            "Name": f"ray-{self.name}-head",
        }
        answer = ec2.run_instances(
            ImageId=AMI,
            InstanceType="m5.large",
            MinCount=1,
            MaxCount=1,
            ClientToken=f"{self.name}-head",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ],
        )
        head_id = str(answer["Instances"][0]["InstanceId"])
        filters = [
            {"Name": f"tag:{TAG_RAY_NODE_KIND}", "Values": [NODE_KIND_HEAD]},
            {"Name": f"tag:{TAG_RAY_CLUSTER_NAME}", "Values": [self.name]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
        start = self.emulator.now()
        while self.emulator.now() - start < max_seconds:
            listed = ec2.describe_instances(Filters=filters)["Reservations"]
            if listed:
                return head_id
            time.sleep(self.update_interval * self.emulator.settings.time_scale)
        raise TimeoutError(f"head node {head_id} not listed within {max_seconds} s")

    def alive(self) -> int:
        return sum(
            1 for i in self._cluster(include_gone=False) if i.state is not InstanceState.TERMINATED
        )

    def running(self) -> int:
        return sum(1 for i in self._cluster(include_gone=False) if i.state is InstanceState.RUNNING)

    def _update(self) -> None:
        assert self._autoscaler is not None
        self._autoscaler.update()  # a failed update is logged, and counted there
        self.outcome.updates += 1
        self.outcome.peak_alive = max(self.outcome.peak_alive, self.alive())
        # Ray's monitor sleeps between updates; in the emulator's time, scaled alike.
        time.sleep(self.update_interval * self.emulator.settings.time_scale)

    def _new_autoscaler(self) -> None:
        """A new StandardAutoscaler with a new provider, as when Ray's monitor restarts."""
        _clear_provider_cache()
        self._autoscaler = StandardAutoscaler(
            self._read_config,
            LoadMetrics(),
            gcs_client=None,
            max_failures=10**9,
            update_interval_s=0,
            session_name=self.name,
        )

    def _restart_once_launched(self, workers: int, max_seconds: float) -> None:
        """Wait until every launch has returned, then restart the autoscaler; record how
        many of those instances a listing by the cluster's tag did not show yet."""
        start = self.emulator.now()
        while len(self._cluster(include_gone=True)) < workers:
            if self.emulator.now() - start > max_seconds:
                raise TimeoutError(f"fewer than {workers} launched in {max_seconds} s")
            time.sleep(0.01)
        launched = {i.instance_id for i in self._cluster(include_gone=True)}
        self.outcome.invisible_at_restart = len(launched - self.listed())
        self._new_autoscaler()

    def listed(self) -> set[str]:
        """The ids a DescribeInstances by the cluster's tag shows now (5xx retried)."""
        pages = (
            self.emulator.client(retries={"mode": "standard", "total_max_attempts": 20})
            .get_paginator("describe_instances")
            .paginate(Filters=[{"Name": f"tag:{TAG_RAY_CLUSTER_NAME}", "Values": [self.name]}])
        )
        return {
            i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]
        }

    def run(self, workers: int, *, max_seconds: float = 1200.0, restart: bool = False) -> Outcome:
        """Scale 0 -> ``workers`` -> 0; ``max_seconds`` (emulated) bounds each phase. With
        ``restart``, the autoscaler restarts right after its launches returned."""
        self.outcome = Outcome(provider=self.kind, target=workers)
        self.start_head()
        baseline = self._calls()
        throttled = self.emulator.calls.count(outcome="RequestLimitExceeded")
        env = (
            aws_endpoint(self.emulator.endpoint_url)
            if self.kind == "ray"
            else contextlib.nullcontext()
        )
        with counting_ray_errors() as errors, env, contextlib.redirect_stdout(sys.stderr):
            self._new_autoscaler()
            self.set_workers(workers)
            start = self.emulator.now()
            if restart:
                self._update()
                self._restart_once_launched(workers, max_seconds)
            while self.emulator.now() - start < max_seconds:
                self._update()
                if self.running() >= workers:
                    self.outcome.seconds_to_target = self.emulator.now() - start
                    break
            self.set_workers(0)
            start = self.emulator.now()
            while self.emulator.now() - start < max_seconds:
                self._update()
                if self.alive() == 0:
                    break
        launched = len(self._cluster(include_gone=True))
        self.outcome.update_errors = errors.count
        self.outcome.error_samples = errors.samples
        self.outcome.launched = launched
        self.outcome.duplicates = max(0, launched - workers)
        self.outcome.leaks = self.alive()
        after = self._calls()
        self.outcome.throttled = (
            self.emulator.calls.count(outcome="RequestLimitExceeded") - throttled
        )
        self.outcome.api_calls = {
            a: after[a] - baseline[a] for a in INSTANCE_ACTIONS if after[a] > baseline[a]
        }
        return self.outcome

    def _calls(self) -> dict[str, int]:
        return {action: self.emulator.calls.count(action) for action in INSTANCE_ACTIONS}


def start_emulator(
    profile: str = "realistic", *, time_scale: float, seed: int = 0, **overrides: Any
) -> Emulator:
    """An emulator on its own scaled clock (Ray reads wall time, so a fake clock won't do)."""
    settings = build_settings(
        profile=profile,
        overrides={
            "seed": seed,
            "time_scale": time_scale,
            "spot": {"interruption_rate_per_hour": 0},
            **overrides,
        },
    )
    return Emulator(settings).start()
