"""The in-memory backend: the emulator's model behind the provider protocol, no HTTP."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from typing import Any

import pytest
from botocore.exceptions import ClientError

from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.core.lifecycle import Status
from steadyscale.emulator import Fault, Operation, build_settings
from steadyscale.errors import (
    CapacityUnavailable,
    CloudUnavailable,
    LaunchRejected,
    ProviderSetupError,
    Throttled,
    cloud_error,
)
from steadyscale.providers.aws import translate
from steadyscale.providers.memory import MemoryProvider
from steadyscale.providers.protocol import ClientOptions, LaunchSpec
from steadyscale.retries.clock import FakeClock
from tests.cluster import make_memory_cluster

NODE = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
QUIET = {
    "errors": {
        "server_error_probability": 0,
        "lost_response_probability": 0,
        "timeout_probability": 0,
    },
    "spot": {"interruption_rate_per_hour": 0},
}


def _provider(
    profile: str = "realistic", *, max_attempts: int = 3, **overrides: Any
) -> tuple[MemoryProvider, FakeClock]:
    clock = FakeClock(1_000.0)
    settings = build_settings(profile=profile, overrides={**QUIET, **overrides})
    return MemoryProvider(
        cluster_name="c1",
        clock=clock,
        settings=settings,
        options=ClientOptions(max_attempts=max_attempts),
    ), clock


def _spec(count: int = 3, request: str = "r-1", **node: Any) -> LaunchSpec:
    return LaunchSpec(
        request_id=request,
        client_token=f"ss-{request}",
        node_type="cpu",
        count=count,
        node_config={**NODE, **node},
    )


def test_launch_answers_ids_that_listings_show_only_after_their_lag() -> None:
    provider, clock = _provider(visibility={"median": 30, "p99": 40, "max": 50})
    launched = provider.launch(_spec(3))
    ids = {i.instance_id for i in launched.instances}
    assert len(ids) == 3 and all(i.state == "pending" for i in launched.instances)
    assert all(i.private_ip and i.tags[TAG_CLUSTER] == "c1" for i in launched.instances)
    assert provider.list_cluster() == []
    assert provider.describe_by_id(sorted(ids)) == []
    clock.advance(60)
    assert {i.instance_id for i in provider.list_cluster()} == ids
    assert {i.instance_id for i in provider.describe_by_id(sorted(ids))} == ids


def test_a_repeated_client_token_returns_the_same_instances() -> None:
    provider, _ = _provider()
    first = provider.launch(_spec(4))
    again = provider.launch(_spec(4))
    assert [i.instance_id for i in again.instances] == [i.instance_id for i in first.instances]
    assert len(provider.truth()) == 4


def test_a_lost_launch_answer_is_retried_with_the_same_token_and_launches_once() -> None:
    provider, _ = _provider()
    provider.inject(Fault.LOST_RESPONSE, "RunInstances", count=1)
    result = provider.launch(_spec(5))  # the SDK's retry gets the original answer
    assert len(result.instances) == 5
    assert len(provider.truth()) == 5
    assert provider.calls.count("RunInstances", "InternalError") == 1


def test_terminating_a_fresh_id_reports_not_found_and_the_instance_lives_on() -> None:
    provider, clock = _provider(
        visibility_by_operation={"terminate": {"median": 30, "p99": 40, "max": 50}}
    )
    ids = [i.instance_id for i in provider.launch(_spec(2)).instances]
    result = provider.terminate(ids)
    assert sorted(result.not_found) == sorted(ids) and result.states == {}
    assert all(i.state.value in ("pending", "running") for i in provider.truth())
    clock.advance(60)
    result = provider.terminate(ids)
    assert set(result.states) == set(ids) and result.not_found == ()


def test_throttling_and_capacity_errors_become_our_error_types() -> None:
    provider, _ = _provider(max_attempts=1)
    for n in range(5):  # RunInstances' bucket holds 5
        provider.launch(_spec(1, request=f"r-{n}"))
    with pytest.raises(Throttled):
        provider.launch(_spec(1, request="r-5"))
    full, _ = _provider(capacity={"pools": {"m5.large/*": 0}})
    with pytest.raises(CapacityUnavailable):
        full.launch(_spec(1))


def test_server_errors_beyond_the_retries_are_cloud_unavailable() -> None:
    provider, _ = _provider()
    provider.inject(Fault.SERVER_ERROR, "DescribeInstances", count=3)
    with pytest.raises(CloudUnavailable):
        provider.list_cluster()
    assert provider.calls.count("DescribeInstances") == 3


@pytest.mark.parametrize(
    "code, status, kind",
    [
        ("RequestLimitExceeded", 503, Throttled),
        ("InsufficientInstanceCapacity", 500, CapacityUnavailable),
        ("InternalError", 500, CloudUnavailable),
        ("InvalidInstanceID.NotFound", 400, LaunchRejected),
        ("AuthFailure", 401, ProviderSetupError),
    ],
)
def test_both_backends_map_an_error_code_to_the_same_error(
    code: str, status: int, kind: type[Exception]
) -> None:
    answer: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    boto = ClientError(answer, "RunInstances")
    assert type(translate(boto)) is type(cloud_error(code, "m", status)) is kind


def test_the_autoscaler_scales_up_and_down_on_the_memory_backend() -> None:
    cluster = make_memory_cluster("realistic", idle_timeout_minutes=0)
    cluster.demand(40)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 40, max_ticks=100)
    assert len(cluster.truth()) == 40
    requests = {r.request_id for r in cluster.ledger.requests()}
    assert {i.tags[TAG_REQUEST] for i in cluster.truth()} <= requests
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=100)
    assert cluster.count(Status.TERMINATED) == 40


def test_the_model_lists_by_tag_exactly_as_its_per_instance_checks_say() -> None:
    provider, clock = _provider(visibility={"median": 20, "p99": 60, "max": 90})
    model = provider.model
    for n in range(6):
        provider.launch(_spec(5, request=f"r-{n}"))
        clock.advance(7)
    for _ in range(8):
        now = clock.now()
        expected = [
            i.instance_id
            for i in model.instances.values()
            if model.visibility.is_visible(i.instance_id, Operation.LISTING, now)
            and model.visibility.tags_indexed(i.instance_id, [TAG_CLUSTER], now)
        ]
        listed = [
            i.instance_id for i in model.visibility.listed(now, tag_key=TAG_CLUSTER, tag_value="c1")
        ]
        assert listed == expected
        clock.advance(10)
    assert listed and len(listed) == 30


def test_instance_ids_and_addresses_come_from_the_seed() -> None:
    def launched() -> list[tuple[str, str | None]]:
        provider, _ = _provider()
        return [(i.instance_id, i.private_ip) for i in provider.launch(_spec(3)).instances]

    first = launched()
    assert first == launched()
    assert len({iid for iid, _ in first}) == len({ip for _, ip in first}) == 3


def test_memory_backend_reports_calls_and_retries_to_the_metrics() -> None:
    cluster = make_memory_cluster(
        "none", emulator={"errors": {"server_error_probability": 0.3}}, quiet_errors=False
    )
    cluster.demand(3)
    cluster.run(lambda r: r.capacity_met, max_ticks=40)
    registry = cluster.autoscaler.metrics.registry
    launches = registry.get_sample_value("steadyscale_api_calls_total", {"action": "RunInstances"})
    assert launches is not None and launches >= 1
    retried = sum(
        s.value
        for m in registry.collect()
        if m.name == "steadyscale_api_retries"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert retried >= 1  # 5xx answers, retried as the SDK would


def test_ids_no_message_names_are_dropped_instead_of_retried_for_ever() -> None:
    provider, _ = _provider("none")
    (known,) = [i.instance_id for i in provider.launch(_spec(1)).instances]
    # As the boto3 provider does: the whole batch is dropped, after one call.
    assert provider.describe_by_id([known, "i-xyz"]) == []
    assert provider.calls_by_action()["DescribeInstances"] == 1
    assert provider.terminate(["i-xyz"]).not_found == ("i-xyz",)


def test_a_name_the_caller_chose_is_kept_as_the_boto3_provider_keeps_it() -> None:
    provider, _ = _provider("none")
    named = provider.launch(
        _spec(
            1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "ray-worker-7"}]}
            ],
        )
    )
    plain = provider.launch(_spec(1, request="r-2"))
    assert [i.tags["Name"] for i in named.instances] == ["ray-worker-7"]
    assert [i.tags["Name"] for i in plain.instances] == ["c1-cpu"]


def test_tags_set_later_are_refused_while_the_id_is_fresh_then_listed_once_indexed() -> None:
    provider, clock = _provider(
        "none",
        visibility_by_operation={
            "create_tags": {"median": 20, "p99": 20, "max": 20},
            "tag_index": {"median": 10, "p99": 10, "max": 10},
        },
    )
    ids = [i.instance_id for i in provider.launch(_spec(2)).instances]
    assert sorted(provider.create_tags(ids, {"role": "worker"})) == sorted(ids)
    clock.advance(21)
    assert provider.create_tags(ids, {"role": "worker"}) == []
    assert provider.list_tagged("role", "worker") == []  # the tag index lags
    clock.advance(11)
    shown = provider.list_tagged("role", "worker")
    assert sorted(i.instance_id for i in shown) == sorted(ids)
    assert all(i.tags["role"] == "worker" and i.tags[TAG_CLUSTER] == "c1" for i in shown)


def test_stopped_instances_are_listed_by_state_and_started_again() -> None:
    provider, clock = _provider("none")
    ids = [i.instance_id for i in provider.launch(_spec(2)).instances]
    clock.advance(1)
    stopped = provider.change_state("StopInstances", ids[:1])
    assert stopped.states == {ids[0]: "stopped"} and stopped.not_found == ()
    listed = provider.list_tagged(TAG_CLUSTER, "c1", states=("stopped",))
    assert [i.instance_id for i in listed] == ids[:1]
    assert provider.change_state("StartInstances", ids[:1]).states == {ids[0]: "running"}
    assert provider.list_tagged(TAG_CLUSTER, "c1", states=("stopped",)) == []
    with pytest.raises(ValueError, match="RebootInstances"):
        provider.change_state("RebootInstances", ids)


def test_a_spot_launch_is_shown_with_the_spot_lifecycle() -> None:
    provider, _ = _provider("none")
    spot = provider.launch(_spec(1, InstanceMarketOptions={"MarketType": "spot"}))
    assert spot.instances[0].lifecycle == "spot"
    assert provider.launch(_spec(1, request="r-2")).instances[0].lifecycle is None


def test_a_dropped_provider_frees_its_model_at_once_without_waiting_for_the_collector() -> None:
    # A reference cycle through the provider would keep its whole EC2 model (every
    # instance ever launched) alive until a full collection, which the simulator makes rare.
    provider, _ = _provider("none")
    provider.launch(_spec(3))
    model = weakref.ref(provider.model)
    gc.disable()
    try:
        del provider
        assert model() is None
    finally:
        gc.enable()


def test_the_memory_backend_runs_without_importing_moto() -> None:
    """The EC2 model reads instance types' vCPUs from moto's data file; only the emulator
    may run moto's code (the import contracts cannot see an import by name)."""
    code = (
        "import json, sys\n"
        "from steadyscale.ec2model.settings import build_settings\n"
        "from steadyscale.providers.memory import MemoryProvider\n"
        "from steadyscale.providers.protocol import LaunchSpec\n"
        "from steadyscale.retries.clock import FakeClock\n"
        "memory = MemoryProvider(cluster_name='c1', clock=FakeClock(),\n"
        "                        settings=build_settings(profile='none', overrides={\n"
        "                            'capacity': {'vcpu_limit': 6}}))\n"
        "spec = LaunchSpec('r-1', 'ss-r-1', 'cpu', 3,\n"
        "                  {'InstanceType': 'm5.xlarge', 'ImageId': 'ami-12345678'})\n"
        "launched = len(memory.launch(spec).instances)\n"
        "moto = sorted(m for m in sys.modules if m == 'moto' or m.startswith('moto.'))\n"
        "print(json.dumps([launched, moto]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    launched, moto = json.loads(done.stdout)
    assert launched == 1  # 4 vCPUs each (from moto's data) under a limit of 6
    assert moto == []
