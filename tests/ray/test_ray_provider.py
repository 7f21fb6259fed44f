"""steadyscale.ray.EC2NodeProvider against the emulator on a fake clock: every answer Ray's
autoscaler asks for while EC2 does not show a node yet."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError
from ray.autoscaler._private.providers import _get_node_provider
from ray.autoscaler._private.util import prepare_config
from ray.autoscaler.node_launch_exception import NodeLaunchException
from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_CONFIG,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_NODE_STATUS,
    TAG_RAY_USER_NODE_TYPE,
)
from ray.autoscaler.v2.instance_manager.config import FileConfigReader
from ray.autoscaler.v2.instance_manager.node_provider import NodeProviderAdapter

from steadyscale.emulator import Emulator, InstanceState
from steadyscale.errors import ConfigError
from steadyscale.providers.aws import EC2Provider
from steadyscale.ray import EC2NodeProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.testing.ray_harness import cluster_config
from tests.conftest import AMI, FakeEmulator, launch, listed

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
WORKER = {
    TAG_RAY_NODE_KIND: "worker",
    TAG_RAY_USER_NODE_TYPE: "cpu",
    TAG_RAY_LAUNCH_CONFIG: "hash-1",
    TAG_RAY_NODE_NAME: "ray-c1-worker",
}
NODE_CONFIG = {"InstanceType": "m5.large", "ImageId": AMI}
# Every view of a fresh instance lags exactly 30 s.
LAG_30 = {"visibility": {"median": 30, "p99": 30, "max": 30}}


def provider_for(
    emulator: Emulator, clock: FakeClock, tmp_path: Path, **keys: Any
) -> EC2NodeProvider:
    config: dict[str, Any] = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "endpoint_url": emulator.endpoint_url,
        "aws_credentials": CREDENTIALS,
        "cache_stopped_nodes": False,
        "state_path": str(tmp_path / "ray-state.sqlite"),
        **keys,
    }
    return EC2NodeProvider(config, "c1", clock=clock, rng=random.Random(7))


def truth_of(emulator: Emulator, ids: list[str]) -> dict[str, InstanceState]:
    return {
        i.instance_id: i.state for i in emulator.truth(include_gone=True) if i.instance_id in ids
    }


def test_a_fresh_node_is_listed_with_its_tags_before_ec2_shows_it(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)

    created = provider.create_node(NODE_CONFIG, WORKER, 3)

    ids = sorted(created)
    assert len(ids) == 3
    assert not set(ids) & set(listed(ec2)), "EC2 should not list them yet"
    assert sorted(provider.non_terminated_nodes({})) == ids
    assert sorted(provider.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"})) == ids
    assert provider.non_terminated_nodes({TAG_RAY_NODE_KIND: "head"}) == []
    for node_id in ids:
        tags = provider.node_tags(node_id)
        assert {k: tags[k] for k in WORKER} == WORKER
        assert tags[TAG_RAY_CLUSTER_NAME] == "c1"
        assert provider.internal_ip(node_id) == created[node_id]["PrivateIpAddress"]
        assert provider.internal_ip(node_id)
        assert provider.is_running(node_id) is False
        assert provider.is_terminated(node_id) is False


def test_node_tags_of_an_id_nobody_knows_is_empty_not_a_key_error(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)

    assert provider.node_tags("i-0123456789abcdef0") == {}
    assert provider.is_running("i-0123456789abcdef0") is False


def test_tags_set_on_a_fresh_node_reach_ec2_once_it_is_visible(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    (node_id,) = provider.create_node(NODE_CONFIG, WORKER, 1)

    provider.set_node_tags(node_id, {TAG_RAY_NODE_STATUS: "up-to-date"})

    assert provider.node_tags(node_id)[TAG_RAY_NODE_STATUS] == "up-to-date"
    assert emulator.calls.count("CreateTags", "InvalidInstanceID.NotFound") >= 1
    clock.advance(60)
    provider.non_terminated_nodes({})  # each listing sends what EC2 did not take yet
    (shown,) = [i for i in emulator.truth() if i.instance_id == node_id]
    assert shown.tags[TAG_RAY_NODE_STATUS] == "up-to-date"
    assert provider.node_tags(node_id)[TAG_RAY_NODE_STATUS] == "up-to-date"


def test_a_new_provider_still_reports_nodes_launched_but_not_yet_visible(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    first = provider_for(emulator, clock, tmp_path)
    ids = sorted(first.create_node(NODE_CONFIG, WORKER, 2))
    first.state.close()

    restarted = provider_for(emulator, clock, tmp_path)

    assert sorted(restarted.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"})) == ids
    assert restarted.node_tags(ids[0])[TAG_RAY_USER_NODE_TYPE] == "cpu"
    clock.advance(60)
    assert sorted(restarted.non_terminated_nodes({})) == ids
    assert restarted.state.launches() == [], "listed nodes leave the state file"


def test_terminating_a_node_ec2_does_not_know_yet_is_retried_until_it_is_gone(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))

    provider.terminate_nodes(ids)

    assert provider.non_terminated_nodes({}) == []
    assert all(provider.is_terminated(i) for i in ids)
    assert emulator.calls.count("TerminateInstances", "InvalidInstanceID.NotFound") >= 1
    assert set(truth_of(emulator, ids).values()) <= {InstanceState.PENDING, InstanceState.RUNNING}
    # A restart in between: the new provider finishes the job.
    provider.state.close()
    restarted = provider_for(emulator, clock, tmp_path)
    clock.advance(60)
    assert restarted.non_terminated_nodes({}) == []
    clock.advance(120)
    assert set(truth_of(emulator, ids).values()) == {InstanceState.TERMINATED}
    assert restarted.state.terminations() == []


def test_a_node_a_flickering_listing_omits_is_kept_and_a_terminated_one_dropped(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator(
        "realistic",
        visibility={"median": 0, "p99": 0, "max": 0},
        stale_reads={"probability": 0, "listing_flicker_probability": 1.0},
    )
    provider = provider_for(emulator, clock, tmp_path)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))
    clock.advance(5)
    assert sorted(provider.non_terminated_nodes({})) == ids

    for _ in range(3):  # every later listing omits them: lookups by id keep them
        clock.advance(5)
        assert sorted(provider.non_terminated_nodes({})) == ids
    ec2.terminate_instances(InstanceIds=[ids[0]])  # by someone else
    clock.advance(120)

    assert provider.non_terminated_nodes({}) == [ids[1]]


def test_stopped_nodes_are_reused_when_cache_stopped_nodes_is_on(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("none")
    provider = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)
    first = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))
    provider.terminate_nodes(first)
    clock.advance(120)
    assert set(truth_of(emulator, first).values()) == {InstanceState.STOPPED}

    again = provider.create_node(NODE_CONFIG, WORKER, 3)

    assert set(first) < set(again) and len(again) == 3
    assert emulator.calls.count("StartInstances", "ok") == 1
    assert sorted(provider.non_terminated_nodes({})) == sorted(again)


def test_subnets_are_tried_in_order_and_failing_everywhere_is_a_launch_exception(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator("none")
    provider = provider_for(emulator, clock, tmp_path)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]

    created = provider.create_node(
        {**NODE_CONFIG, "SubnetIds": ["subnet-0000000000000000a", subnet]}, WORKER, 1
    )

    (node_id,) = created
    shown = ec2.describe_instances(InstanceIds=[node_id])["Reservations"][0]["Instances"][0]
    assert shown["SubnetId"] == subnet
    with pytest.raises(NodeLaunchException) as failure:
        provider.create_node({**NODE_CONFIG, "SubnetIds": ["subnet-0000000000000000a"]}, WORKER, 1)
    assert failure.value.category == "InvalidSubnetID.NotFound"


def test_a_launch_whose_response_was_lost_launches_once(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path, max_attempts=1)
    emulator.inject("lost_response", "RunInstances", count=1)

    created = provider.create_node(NODE_CONFIG, WORKER, 4)

    assert len(created) == 4
    assert len(emulator.truth()) == 4, "the retry reused the ClientToken"
    assert emulator.calls.count("RunInstances") == 2


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({}, "provider.region"),
        ({"region": "us-east-1", "time_scale": 0}, "provider.time_scale"),
        ({"region": "us-east-1", "cache_stopped_nodes": "maybe"}, "provider.cache_stopped_nodes"),
    ],
)
def test_a_bad_provider_section_is_one_error_naming_the_key(
    keys: dict[str, Any], named: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as failure:
        EC2NodeProvider({"type": "external", "state_path": str(tmp_path / "s"), **keys}, "c1")
    assert str(failure.value).startswith(named)
    assert "\n" not in str(failure.value)


def test_ray_loads_it_from_the_module_path_in_the_cluster_yaml(
    ec2_emulator: Emulator, tmp_path: Path
) -> None:
    config = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "endpoint_url": ec2_emulator.endpoint_url,
        "aws_credentials": CREDENTIALS,
        "state_path": str(tmp_path / "s.sqlite"),
    }

    provider = _get_node_provider(config, "c1", use_cache=False)

    assert isinstance(provider, EC2NodeProvider)
    assert provider.non_terminated_nodes({}) == []


def test_ray_v2_sees_launched_nodes_with_their_request_through_its_adapter(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    config = cluster_config("c1", dict(provider.provider_config), workers=3, subnet_ids=[])
    for node_type in config["available_node_types"].values():
        node_type["node_config"].pop("SubnetIds")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    adapter = NodeProviderAdapter(provider, FileConfigReader(str(path)))

    adapter._do_launch({"worker": 3}, "req-1")
    adapter._node_launcher_executors.shutdown(wait=True)  # the launches are done

    assert adapter.poll_errors() == []
    seen = adapter.get_non_terminated()
    assert len(seen) == 3
    assert {(i.node_type, i.request_id, i.is_running) for i in seen.values()} == {
        ("worker", "req-1", False)
    }
    adapter._do_terminate(list(seen), "req-2")
    assert adapter.poll_errors() == [] and adapter.get_non_terminated() == {}
    clock.advance(60)
    provider.non_terminated_nodes({})  # retries what EC2 did not know yet
    clock.advance(120)
    assert set(truth_of(emulator, list(seen)).values()) == {InstanceState.TERMINATED}


def test_config_hooks_leave_an_emulator_config_alone_and_ask_for_resources(
    ec2_emulator: Emulator,
) -> None:
    provider = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "endpoint_url": ec2_emulator.endpoint_url,
    }
    config = cluster_config("c1", provider, workers=2, subnet_ids=[])

    for hook in (
        EC2NodeProvider.bootstrap_config,
        EC2NodeProvider.fillout_available_node_types_resources,
    ):
        answered = hook(config)
        assert {key: answered[key] for key in config} == config
    del config["available_node_types"]["worker"]["resources"]
    with pytest.raises(ConfigError) as failure:
        EC2NodeProvider.fillout_available_node_types_resources(config)
    assert str(failure.value).startswith("available_node_types.worker.resources: required")


def test_a_node_ec2_refuses_to_terminate_stays_listed_for_ray(
    fake_emulator: FakeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, clock, _ = fake_emulator("none")
    provider = provider_for(emulator, clock, tmp_path)
    (node_id,) = provider.create_node({**NODE_CONFIG, "DisableApiTermination": True}, WORKER, 1)
    clock.advance(5)
    assert provider.non_terminated_nodes({}) == [node_id]

    provider.terminate_nodes([node_id])

    assert truth_of(emulator, [node_id]) == {node_id: InstanceState.RUNNING}
    assert provider.non_terminated_nodes({}) == [node_id]
    assert provider.is_terminated(node_id) is False
    assert provider.node_tags(node_id)[TAG_RAY_USER_NODE_TYPE] == "cpu"
    assert "OperationNotPermitted" in caplog.text
    assert provider.state.terminations() == []


SPOT_CONFIG = {**NODE_CONFIG, "InstanceMarketOptions": {"MarketType": "spot"}}


def _scale_down_after_a_restart(
    fake_emulator: FakeEmulator, tmp_path: Path, node_config: dict[str, Any], count: int
) -> tuple[Emulator, list[str]]:
    """Launch with cache_stopped_nodes, restart the provider, scale the nodes down."""
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    first = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)
    ids = sorted(first.create_node(node_config, WORKER, count))
    first.state.close()
    restarted = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)

    restarted.terminate_nodes(ids)
    clock.advance(60)
    restarted.non_terminated_nodes({})
    clock.advance(120)
    return emulator, ids


def test_a_spot_node_is_terminated_not_stopped_after_a_restart(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, ids = _scale_down_after_a_restart(fake_emulator, tmp_path, SPOT_CONFIG, 2)
    assert emulator.calls.count("StopInstances") == 0
    assert set(truth_of(emulator, ids).values()) == {InstanceState.TERMINATED}


def test_a_node_of_unknown_lifecycle_is_terminated_not_stopped(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator("none")
    provider = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)
    (node_id,) = launch(
        ec2,
        1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": TAG_RAY_CLUSTER_NAME, "Value": "c1"}]}
        ],
    )

    provider.terminate_nodes([node_id])  # never listed or launched by this provider
    clock.advance(120)

    assert emulator.calls.count("StopInstances") == 0
    assert truth_of(emulator, [node_id]) == {node_id: InstanceState.TERMINATED}


def test_an_on_demand_node_is_still_stopped_with_cache_stopped_nodes(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, ids = _scale_down_after_a_restart(fake_emulator, tmp_path, NODE_CONFIG, 1)
    assert set(truth_of(emulator, ids).values()) == {InstanceState.STOPPED}


def _boto3_client(provider: EC2NodeProvider) -> Any:
    """The boto3 client under the provider Ray's config describes (the default)."""
    assert isinstance(provider.cloud, EC2Provider)
    return provider.cloud._ec2


def _refuse_credentials(
    provider: EC2NodeProvider, monkeypatch: pytest.MonkeyPatch, *actions: str
) -> None:
    """EC2 answers these calls with AuthFailure, as with revoked or rotated credentials."""
    answer: Any = {
        "Error": {"Code": "AuthFailure", "Message": "not authorized"},
        "ResponseMetadata": {"HTTPStatusCode": 401},
    }

    def refuse(**_: Any) -> Any:
        raise ClientError(answer, "Call")

    for action in actions:
        monkeypatch.setattr(_boto3_client(provider), action, refuse)


def test_refused_credentials_are_answered_from_what_the_provider_knows(
    fake_emulator: FakeEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))
    _refuse_credentials(
        provider,
        monkeypatch,
        "describe_instances",
        "create_tags",
        "terminate_instances",
        "run_instances",
    )
    unknown = "i-0123456789abcdef0"

    assert sorted(provider.non_terminated_nodes({})) == ids
    assert provider.node_tags(unknown) == {}
    assert provider.is_running(unknown) is False
    assert provider.is_terminated(unknown) is False
    assert provider.external_ip(ids[0]) is None
    provider.set_node_tags(ids[0], {TAG_RAY_NODE_STATUS: "up-to-date"})
    provider.terminate_nodes([ids[1]])
    assert provider.non_terminated_nodes({}) == [ids[0]]
    with pytest.raises(NodeLaunchException) as failure:
        provider.create_node(NODE_CONFIG, WORKER, 1)
    assert failure.value.category == "ProviderSetupError"
    assert "AuthFailure" in failure.value.description
    assert caplog.text.count("EC2 cannot be used") == 1


# What Ray's autoscaler must be given for `type: external`: it merges these three before
# any provider code runs (docs/ray.md says so).
COMMANDS: dict[str, Any] = {
    "setup_commands": [],
    "head_setup_commands": [],
    "worker_setup_commands": [],
}


def test_a_minimal_yaml_gets_what_rays_aws_defaults_give_type_aws(ec2_emulator: Emulator) -> None:
    minimal: dict[str, Any] = {"cluster_name": "c1", "max_workers": 2, **COMMANDS}
    as_aws = prepare_config({**minimal, "provider": {"type": "aws", "region": "us-east-1"}})
    ours = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "endpoint_url": ec2_emulator.endpoint_url,
    }
    prepared = prepare_config({**minimal, "provider": ours})

    # Ray's order in `ray up`: resources first, then the provider's bootstrap.
    filled = EC2NodeProvider.bootstrap_config(
        EC2NodeProvider.fillout_available_node_types_resources(
            {
                **prepared,
                "available_node_types": {
                    name: {**node_type, "resources": {"CPU": 2}}
                    for name, node_type in prepared["available_node_types"].items()
                },
            }
        )
    )

    assert filled["auth"] == as_aws["auth"] == {"ssh_user": "ubuntu"}
    for key in (
        "head_start_ray_commands",
        "worker_start_ray_commands",
        "idle_timeout_minutes",
        "upscaling_speed",
        "docker",
        "file_mounts",
        "initialization_commands",
        "head_node_type",
    ):
        assert filled[key] == as_aws[key], key
    assert filled["head_start_ray_commands"], "Ray is started on the head node"
    for name, node_type in as_aws["available_node_types"].items():
        assert filled["available_node_types"][name]["node_config"] == node_type["node_config"]
    assert filled["provider"] == ours


def test_keys_the_yaml_gives_are_kept_over_rays_aws_defaults(ec2_emulator: Emulator) -> None:
    ours = {
        "type": "external",
        "module": "steadyscale.ray.EC2NodeProvider",
        "region": "us-east-1",
        "endpoint_url": ec2_emulator.endpoint_url,
    }
    config = cluster_config("c1", ours, workers=2, subnet_ids=[])
    config.update(
        auth={"ssh_user": "ec2-user"},
        idle_timeout_minutes=1,
        head_start_ray_commands=["ray start --head"],
        upscaling_speed=None,
    )

    filled = EC2NodeProvider.bootstrap_config(prepare_config(config))

    assert filled["auth"] == {"ssh_user": "ec2-user"}
    assert filled["idle_timeout_minutes"] == 1
    assert filled["head_start_ray_commands"] == ["ray start --head"]
    assert filled["upscaling_speed"] == 1.0, "None takes Ray's AWS default"
    assert filled["available_node_types"]["worker"]["node_config"]["InstanceType"] == "m5.large"


def test_a_launch_unanswered_past_its_deadline_is_resent_with_its_token_not_repeated(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path, max_attempts=1, launch_deadline_seconds=5)
    emulator.inject("lost_response", "RunInstances", count=8)

    with pytest.raises(NodeLaunchException):
        provider.create_node(NODE_CONFIG, WORKER, 4)
    assert len(emulator.truth()) == 4, "EC2 launched them all the same"
    assert len(provider.state.intents()) == 1
    # Ray's updates: launch what it does not see; answers stay lost for a while, and
    # Ray's autoscaler restarts in between.
    assert provider.create_node(NODE_CONFIG, WORKER, 4) == {}, "still unanswered"
    assert emulator.calls.count("RunInstances", "ok") == 0
    provider.state.close()
    restarted = provider_for(emulator, clock, tmp_path, max_attempts=1, launch_deadline_seconds=5)
    for _ in range(10):
        seen = restarted.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"})
        if len(seen) < 4:
            restarted.create_node(NODE_CONFIG, WORKER, 4 - len(seen))
        clock.advance(1)

    truth = [i.instance_id for i in emulator.truth()]
    assert len(truth) == 4
    assert sorted(restarted.non_terminated_nodes({})) == sorted(truth)
    assert restarted.state.intents() == []


def test_an_unanswered_launch_of_another_node_type_does_not_hold_back_this_one(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path, max_attempts=1, launch_deadline_seconds=5)
    emulator.inject("lost_response", "RunInstances", count=8)
    with pytest.raises(NodeLaunchException):
        provider.create_node(NODE_CONFIG, WORKER, 2)

    gpu = {**WORKER, TAG_RAY_USER_NODE_TYPE: "gpu"}
    created = provider.create_node(NODE_CONFIG, gpu, 1)

    assert len(created) == 1
    assert len(emulator.truth()) == 3


def test_a_node_ec2_will_not_stop_is_terminated_instead(
    fake_emulator: FakeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator, clock, _ = fake_emulator("none")
    provider = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)
    (node_id,) = provider.create_node(NODE_CONFIG, WORKER, 1)
    clock.advance(5)
    provider.non_terminated_nodes({})
    answer: Any = {
        "Error": {
            "Code": "UnsupportedOperation",
            "Message": "an instance-store root cannot be stopped",
        },
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }

    def refuse(**_: Any) -> Any:
        raise ClientError(answer, "StopInstances")

    monkeypatch.setattr(_boto3_client(provider), "stop_instances", refuse)

    provider.terminate_nodes([node_id])
    clock.advance(120)

    assert truth_of(emulator, [node_id]) == {node_id: InstanceState.TERMINATED}
    assert provider.state.terminations() == []
