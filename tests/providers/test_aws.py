"""The boto3 EC2 provider against the emulator, on a fake clock shared by both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.ec2.models import ec2_backends

from steadyscale.core.instances import TAG_CLUSTER, TAG_REQUEST
from steadyscale.emulator import Emulator, Fault, Operation, build_settings
from steadyscale.errors import (
    CapacityUnavailable,
    CloudUnavailable,
    LaunchRejected,
    ProviderSetupError,
    Throttled,
)
from steadyscale.providers import aws
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.protocol import ClientOptions, LaunchSpec, NotVisibleYet
from steadyscale.retries.clock import FakeClock
from tests.cluster import QUIET_ERRORS
from tests.providers.emulated import CREDS, emulated_provider

CONFIG = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}


@pytest.fixture
def world() -> Iterator[tuple[Emulator, FakeClock, EC2Provider]]:
    clock = FakeClock(100.0)
    settings = build_settings(
        profile="realistic",
        overrides={"errors": QUIET_ERRORS, "visibility": {"median": 20, "p99": 30, "max": 40}},
    )
    with Emulator(settings, clock=clock) as emu:
        yield (
            emu,
            clock,
            emulated_provider(emu.endpoint_url, clock, seed=1),
        )


def _spec(count: int = 3, token: str = "ss-r-1") -> LaunchSpec:
    return LaunchSpec(
        request_id=token.removeprefix("ss-"),
        client_token=token,
        node_type="cpu",
        count=count,
        node_config=CONFIG,
    )


def _old_and_fresh(provider: EC2Provider, clock: FakeClock) -> tuple[str, str]:
    """One instance every view shows by now, and one launched this instant."""
    old = provider.launch(_spec(1, "ss-r-old")).instances[0].instance_id
    clock.advance(60)
    fresh = provider.launch(_spec(1, "ss-r-new")).instances[0].instance_id
    return old, fresh


def test_launch_builds_the_record_from_the_answer_with_no_lookup(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    result = provider.launch(_spec())
    assert len(result.instances) == 3
    first = result.instances[0]
    assert first.private_ip and first.availability_zone and first.instance_type == "m5.large"
    assert first.tags[TAG_CLUSTER] == "c" and first.tags[TAG_REQUEST] == "r-1"
    assert provider.calls_by_action() == {"RunInstances": 1}
    assert emu.truth()[0].tags[TAG_CLUSTER] == "c"  # tagged at creation


def test_launch_with_the_same_client_token_returns_the_same_instances(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    first = provider.launch(_spec())
    again = provider.launch(_spec())
    assert [i.instance_id for i in again.instances] == [i.instance_id for i in first.instances]
    assert len(emu.truth()) == 3


def test_lookup_returns_not_visible_when_deadline_passes(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    [inst] = provider.launch(_spec(1)).instances
    found = provider.lookup(inst.instance_id)
    assert isinstance(found, NotVisibleYet)
    assert found.attempts > 1
    assert sum(clock.sleeps) == pytest.approx(5.0)  # the default deadline, never more


def test_lookup_finds_an_instance_that_becomes_visible_while_retrying(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    [inst] = provider.launch(_spec(1)).instances
    [truth] = emu.truth()
    clock.advance(truth.visible_at[Operation.LISTING] - clock.now() - 1.0)
    found = provider.lookup(inst.instance_id)
    assert not isinstance(found, NotVisibleYet)
    assert found.instance_id == inst.instance_id


def test_describe_omits_ids_ec2_does_not_show_instead_of_failing(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    old, fresh = _old_and_fresh(provider, clock)
    assert [i.instance_id for i in provider.describe([old, fresh])] == [old]


def test_terminate_reports_fresh_ids_as_not_found_then_accepts_them(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    old, fresh = _old_and_fresh(provider, clock)
    result = provider.terminate([old, fresh])
    assert result.not_found == (fresh,)
    assert result.states == {old: "shutting-down"}
    clock.advance(60)
    assert provider.terminate([fresh]).states == {fresh: "shutting-down"}


def test_list_cluster_reads_every_page(
    world: tuple[Emulator, FakeClock, EC2Provider], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, clock, provider = world
    monkeypatch.setattr(aws, "PAGE_SIZE", 5)
    provider.launch(_spec(12))
    clock.advance(60)
    assert len(provider.list_cluster()) == 12
    assert provider.calls_by_action()["DescribeInstances"] == 3


def test_errors_become_our_types(world: tuple[Emulator, FakeClock, EC2Provider]) -> None:
    emu, clock, provider = world
    emu.inject(Fault.SERVER_ERROR, "DescribeInstances")
    with pytest.raises(CloudUnavailable):
        provider.list_cluster()
    emu.inject(Fault.TIMEOUT, "DescribeInstances")
    with pytest.raises(CloudUnavailable):
        provider.list_cluster()


def test_throttling_and_capacity_errors(world: tuple[Emulator, FakeClock, EC2Provider]) -> None:
    emu, clock, provider = world
    with pytest.raises(Throttled):
        for n in range(10):
            provider.launch(_spec(1, f"ss-r-{n}"))
    clock.advance(100)
    limited = Emulator(
        build_settings(profile="none", overrides={"capacity": {"pools": {"m5.large/*": 0}}}),
        clock=clock,
    ).start()
    try:
        other = emulated_provider(limited.endpoint_url, clock, max_attempts=3)
        with pytest.raises(CapacityUnavailable) as caught:
            other.launch(_spec(1))
        assert caught.value.code == "InsufficientInstanceCapacity"
    finally:
        limited.stop()


def test_preflight_names_an_unreachable_endpoint() -> None:
    provider = EC2Provider(
        cluster_name="c",
        region="us-east-1",
        clock=FakeClock(),
        endpoint_url="http://127.0.0.1:9",
        credentials=CREDS,
        connect_timeout=1,
        options=ClientOptions(max_attempts=1),
    )
    with pytest.raises(ProviderSetupError, match=r"cannot reach http://127\.0\.0\.1:9"):
        provider.preflight()


def test_missing_credentials_is_a_setup_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    provider = EC2Provider(
        cluster_name="c",
        region="us-east-1",
        clock=FakeClock(),
        options=ClientOptions(max_attempts=1),
    )
    with pytest.raises(ProviderSetupError, match="no AWS credentials found"):
        provider.preflight()


def test_describe_by_id_drops_the_ids_ec2_does_not_know_and_asks_again(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    old, fresh = _old_and_fresh(provider, clock)
    before = provider.calls_by_action().get("DescribeInstances", 0)
    assert [i.instance_id for i in provider.describe_by_id([old, fresh])] == [old]
    assert provider.calls_by_action()["DescribeInstances"] - before == 2
    assert provider.describe_by_id([fresh]) == []


def test_parameters_botocore_refuses_are_a_final_launch_error(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    spec = LaunchSpec(
        request_id="r-x",
        client_token="ss-r-x",
        node_type="cpu",
        count=1,
        node_config={**CONFIG, "EbsOptimized": "yes"},
    )
    with pytest.raises(LaunchRejected) as caught:
        provider.launch(spec)
    assert caught.value.code == "InvalidParameter"
    assert emu.truth() == []


def test_a_protected_instance_does_not_block_the_others(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    free = [i.instance_id for i in provider.launch(_spec(2, "ss-r-a")).instances]
    protected = (
        provider.launch(
            LaunchSpec(
                request_id="r-b",
                client_token="ss-r-b",
                node_type="cpu",
                count=1,
                node_config={**CONFIG, "DisableApiTermination": True},
            )
        )
        .instances[0]
        .instance_id
    )
    clock.advance(60)
    result = provider.terminate([*free, protected])
    assert set(result.states) == set(free)
    assert result.refused[protected].startswith("OperationNotPermitted")


def test_volumes_carry_the_cluster_tags_next_to_the_users_own(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    mine = {
        "ResourceType": "volume",
        "Tags": [{"Key": "team", "Value": "data"}, {"Key": TAG_CLUSTER, "Value": "not-c"}],
    }
    provider.launch(
        LaunchSpec(
            request_id="r-1",
            client_token="ss-r-1",
            node_type="cpu",
            count=2,
            node_config={**CONFIG, "TagSpecifications": [mine]},
        )
    )
    volumes = list(ec2_backends[emu.app.account_id]["us-east-1"].volumes.values())
    assert len(volumes) == 2
    for volume in volumes:
        tags = {t["key"]: t["value"] for t in volume.get_tags()}
        assert tags["team"] == "data"  # the user's tag kept
        assert tags[TAG_CLUSTER] == "c" and tags[TAG_REQUEST] == "r-1"  # ours win


def test_create_tags_returns_the_fresh_ids_ec2_does_not_know_yet(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    old, fresh = _old_and_fresh(provider, clock)

    not_found = provider.create_tags([old, fresh], {"role": "worker"})

    assert not_found == [fresh]
    tags = {i.instance_id: i.tags for i in emu.truth()}
    assert tags[old]["role"] == "worker" and "role" not in tags[fresh]


def test_stop_and_start_report_states_and_unknown_ids(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    old, fresh = _old_and_fresh(provider, clock)

    stopped = provider.change_state("StopInstances", [old, fresh])
    clock.advance(120)
    started = provider.change_state("StartInstances", [old])

    assert set(stopped.states) == {old} and stopped.not_found == (fresh,)
    assert set(started.states) == {old}
    with pytest.raises(ValueError, match="TerminateInstances"):
        provider.change_state("TerminateInstances", [old])


def test_list_tagged_filters_by_any_tag_and_state_and_a_callers_name_is_kept(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, provider = world
    named = {
        **CONFIG,
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "team", "Value": "a"}, {"Key": "Name", "Value": "mine"}],
            }
        ],
    }
    launched = provider.launch(
        LaunchSpec(
            request_id="r-9", client_token="ss-r-9", node_type="cpu", count=2, node_config=named
        )
    )
    clock.advance(120)

    shown = provider.list_tagged("team", "a", states=("pending", "running"))

    assert {i.instance_id for i in shown} == {i.instance_id for i in launched.instances}
    assert {i.tags["Name"] for i in shown} == {"mine"}
    assert provider.list_tagged("team", "a", states=("stopped",)) == []


def test_every_call_of_a_replica_names_it_in_the_user_agent(
    world: tuple[Emulator, FakeClock, EC2Provider],
) -> None:
    emu, clock, _ = world
    agents: list[str] = []
    for replica in (None, "r-2"):
        provider = emulated_provider(emu.endpoint_url, clock, replica_id=replica)

        def sent(request: Any, **_: Any) -> None:
            agents.append(request.headers["User-Agent"].decode())

        provider._ec2.meta.events.register("before-send.ec2", sent)
        provider.list_cluster()
    plain, replica_agent = agents
    assert "steadyscale" in plain and "steadyscale-replica/" not in plain
    assert "steadyscale-replica/r-2" in replica_agent
