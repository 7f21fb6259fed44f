"""Shared builders: emulators on a fake clock, and small helpers over boto3 answers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from steadyscale.emulator import Emulator
from steadyscale.emulator.pytest_plugin import EmulatorFactory
from steadyscale.retries.clock import FakeClock
from steadyscale.testing.postgres import PostgresServer
from tests.cluster import Cluster, make_cluster

QUIET = {
    "errors": {
        "server_error_probability": 0,
        "lost_response_probability": 0,
        "timeout_probability": 0,
    },
    "spot": {"interruption_rate_per_hour": 0},
}
"""Overrides that keep a profile's lag, staleness and throttling but drop random faults,
so a test sees exactly the fault it is about."""

AMI = "ami-12345678"
CLUSTER_TAG = {"ResourceType": "instance", "Tags": [{"Key": "cluster", "Value": "c1"}]}

FakeEmulator = Callable[..., tuple[Emulator, FakeClock, Any]]


@pytest.fixture(autouse=True)
def _cli_logging_undone() -> Iterator[None]:
    """``main()`` sets up logging for the process; a test that calls it in-process must not
    leave a handler on a captured stream (closed by then) for the tests after it."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "steadyscale":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("steadyscale.lifecycle").setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server on 127.0.0.1 for the whole run (started on first use)."""
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the shared server: one per test."""
    return postgres_server.create_database(f"t{uuid.uuid4().hex[:16]}")


@pytest.fixture
def fake_emulator(ec2_emulator_factory: EmulatorFactory) -> FakeEmulator:
    """``fake_emulator(profile, **overrides) -> (emulator, clock, boto3 client)``."""

    def make(profile: str = "realistic", **overrides: Any) -> tuple[Emulator, FakeClock, Any]:
        clock = FakeClock()
        settings: dict[str, Any] = {**QUIET, **overrides}
        emulator = ec2_emulator_factory(profile, clock=clock, **settings)
        return emulator, clock, emulator.client()

    return make


def launch(ec2: Any, count: int = 1, **kwargs: Any) -> list[str]:
    params: dict[str, Any] = {
        "ImageId": AMI,
        "MinCount": 1,
        "MaxCount": count,
        "InstanceType": "m5.large",
        "TagSpecifications": [CLUSTER_TAG],
    }
    params.update(kwargs)
    answer = ec2.run_instances(**params)
    return [i["InstanceId"] for i in answer["Instances"]]


def listed(ec2: Any, **kwargs: Any) -> dict[str, str]:
    """Every instance a paginated DescribeInstances shows, as {id: state}."""
    seen: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(**kwargs):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                seen[inst["InstanceId"]] = inst["State"]["Name"]
    return seen


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


@pytest.fixture
def cluster_factory() -> Iterator[Callable[..., Cluster]]:
    """``cluster_factory(profile, emulator={...}, **config) -> Cluster`` on a fake clock."""
    made: list[Cluster] = []

    def make(profile: str = "realistic", **kwargs: Any) -> Cluster:
        cluster = make_cluster(profile, **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.ledger.close()
        cluster.emulator.stop()
