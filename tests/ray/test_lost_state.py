"""steadyscale.ray.EC2NodeProvider when its state file is lost while the cluster runs (deleted,
or the provider started with another ``state_path``): the nodes EC2 lists stay in Ray's view
with their tags, nothing is terminated for being unknown, and launches wait until EC2 shows
what it still hides. On the emulator and a fake clock."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.autoscaler.node_launch_exception import NodeLaunchException
from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_CONFIG,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)
from ray.autoscaler.v2.instance_manager.config import FileConfigReader
from ray.autoscaler.v2.instance_manager.node_provider import NodeProviderAdapter

from steadyscale.core.instances import TAG_LEDGER
from steadyscale.emulator import Emulator, InstanceState
from steadyscale.ray import EC2NodeProvider
from steadyscale.retries.clock import FakeClock
from steadyscale.testing.ray_harness import cluster_config
from tests.conftest import FakeEmulator, launch
from tests.ray.test_ray_provider import LAG_30, NODE_CONFIG, WORKER, provider_for, truth_of

HEAD = {**WORKER, TAG_RAY_NODE_KIND: "head", TAG_RAY_USER_NODE_TYPE: "head"}
MUTATIONS = ("RunInstances", "TerminateInstances", "StopInstances", "StartInstances")


def lose(provider: EC2NodeProvider, how: str, tmp_path: Path) -> dict[str, Any]:
    """Close the provider's state file and lose it: the provider keys for the next one."""
    provider.state.close()
    if how == "deleted":
        for path in tmp_path.glob("ray-state.sqlite*"):
            path.unlink()
        return {}
    return {"state_path": str(tmp_path / "elsewhere" / "ray-state.sqlite")}


def mutations(emulator: Emulator) -> dict[str, int]:
    return {action: emulator.calls.count(action) for action in MUTATIONS}


def running_cluster(
    fake_emulator: FakeEmulator, tmp_path: Path, *, running: int, invisible: int, **keys: Any
) -> tuple[Emulator, FakeClock, EC2NodeProvider, list[str], list[str]]:
    """A provider with ``running`` nodes EC2 lists and ``invisible`` launched 10 s ago
    that it does not list yet (every view lags 30 s)."""
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path, **keys)
    shown = sorted(provider.create_node(NODE_CONFIG, WORKER, running))
    clock.advance(60)
    assert sorted(provider.non_terminated_nodes({})) == shown
    hidden = sorted(provider.create_node(NODE_CONFIG, WORKER, invisible))
    clock.advance(10)
    return emulator, clock, provider, shown, hidden


def test_the_state_file_has_an_id_that_every_node_it_launches_carries(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    ledger_id = provider.state.ledger_id

    ids = sorted(provider.create_node(NODE_CONFIG, WORKER, 2))

    assert uuid.UUID(ledger_id).version == 4
    tags = {i.instance_id: i.tags for i in emulator.truth() if i.instance_id in ids}
    assert {t[TAG_LEDGER] for t in tags.values()} == {ledger_id}
    provider.state.close()
    assert provider_for(emulator, clock, tmp_path).state.ledger_id == ledger_id


@pytest.mark.parametrize("how", ["deleted", "new path"])
def test_a_lost_state_file_keeps_every_listed_node_in_rays_view_with_its_tags(
    fake_emulator: FakeEmulator, tmp_path: Path, how: str
) -> None:
    emulator, clock, first, shown, hidden = running_cluster(
        fake_emulator, tmp_path, running=4, invisible=3
    )
    before = mutations(emulator)

    after = provider_for(emulator, clock, tmp_path, **lose(first, how, tmp_path))

    assert after.state.is_new and after.state.ledger_id != first.state.ledger_id
    assert sorted(after.non_terminated_nodes({TAG_RAY_NODE_KIND: "worker"})) == shown
    for node_id in shown:
        tags = after.node_tags(node_id)
        assert {k: tags[k] for k in (TAG_RAY_NODE_KIND, TAG_RAY_USER_NODE_TYPE)} == {
            TAG_RAY_NODE_KIND: "worker",
            TAG_RAY_USER_NODE_TYPE: "cpu",
        }
        assert tags[TAG_RAY_LAUNCH_CONFIG] == "hash-1"
        assert tags[TAG_RAY_CLUSTER_NAME] == "c1"
        assert after.is_terminated(node_id) is False
    clock.advance(30)  # EC2 lists what it hid at the loss: the view has it all
    assert sorted(after.non_terminated_nodes({})) == sorted(shown + hidden)
    assert mutations(emulator) == before, "nothing launched, stopped or terminated"
    assert set(truth_of(emulator, shown + hidden).values()) == {InstanceState.RUNNING}


@pytest.mark.parametrize("how", ["deleted", "new path"])
def test_after_a_lost_state_file_launches_wait_until_ec2_shows_what_it_hid(
    fake_emulator: FakeEmulator, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, clock, first, shown, hidden = running_cluster(
        fake_emulator, tmp_path, running=4, invisible=3
    )
    after = provider_for(emulator, clock, tmp_path, **lose(first, how, tmp_path))
    launches = emulator.calls.count("RunInstances")

    with caplog.at_level(logging.WARNING, logger="steadyscale.ray"):
        after.non_terminated_nodes({})
        # Ray sees 4 of the 7 nodes it asked for, and asks for the 3 EC2 does not list.
        assert after.create_node(NODE_CONFIG, WORKER, 3) == {}
        after.non_terminated_nodes({})

    assert emulator.calls.count("RunInstances") == launches, "nothing launched twice"
    adopted = [r.getMessage() for r in caplog.records if "adopted" in r.getMessage()]
    assert len(adopted) == 1 and "4 live worker nodes" in adopted[0]
    clock.advance(30)
    assert sorted(after.non_terminated_nodes({})) == sorted(shown + hidden)
    clock.advance(300)  # the hold is over: a launch Ray asks for now goes out
    assert len(after.create_node(NODE_CONFIG, WORKER, 1)) == 1


def test_a_state_file_lost_while_a_launch_was_unanswered_launches_nothing_twice(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    keys = {"max_attempts": 1, "launch_deadline_seconds": 5}
    emulator, clock, first, shown, _ = running_cluster(
        fake_emulator, tmp_path, running=2, invisible=0, **keys
    )
    emulator.inject("lost_response", "RunInstances", count=8)
    with pytest.raises(NodeLaunchException):
        first.create_node(NODE_CONFIG, WORKER, 3)
    assert first.state.intents(), "the launch stays unanswered"

    after = provider_for(emulator, clock, tmp_path, **lose(first, "deleted", tmp_path))

    assert sorted(after.non_terminated_nodes({})) == shown
    assert after.create_node(NODE_CONFIG, WORKER, 3) == {}
    clock.advance(120)
    assert len(after.non_terminated_nodes({})) == 5
    workers = [i for i in emulator.truth() if i.tags.get(TAG_RAY_CLUSTER_NAME) == "c1"]
    assert len(workers) == 5


def test_rays_autoscaler_v2_is_not_held_it_waits_for_its_requests_itself(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, first, _, _ = running_cluster(fake_emulator, tmp_path, running=2, invisible=1)
    after = provider_for(emulator, clock, tmp_path, **lose(first, "deleted", tmp_path))
    after.non_terminated_nodes({})

    assert after.create_node(NODE_CONFIG, WORKER, 1) == {}
    assert len(after.create_node(NODE_CONFIG, {**WORKER, TAG_RAY_LAUNCH_REQUEST: "r-7"}, 1)) == 1


def test_a_new_state_file_in_front_of_only_a_head_node_launches_at_once(
    fake_emulator: FakeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, clock, ec2 = fake_emulator("realistic", **LAG_30)
    # The head, as `ray up` launches it from another machine with a state file of its own.
    launch(
        ec2,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": k, "Value": v}
                    for k, v in {**HEAD, TAG_RAY_CLUSTER_NAME: "c1", TAG_LEDGER: "other"}.items()
                ],
            }
        ],
    )
    clock.advance(60)
    provider = provider_for(emulator, clock, tmp_path)

    with caplog.at_level(logging.WARNING, logger="steadyscale.ray"):
        assert len(provider.non_terminated_nodes({})) == 1
        assert len(provider.create_node(NODE_CONFIG, WORKER, 2)) == 2

    assert not [r for r in caplog.records if "adopted" in r.getMessage()]


def test_a_state_file_that_was_there_adopts_nothing_and_holds_nothing(
    fake_emulator: FakeEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emulator, clock, ec2 = fake_emulator("realistic", **LAG_30)
    provider_for(emulator, clock, tmp_path).state.close()  # the file exists, knows nothing
    # A worker of the cluster that no state file launched (an older provider's, say).
    launch(
        ec2,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": k, "Value": v}
                    for k, v in {**WORKER, TAG_RAY_CLUSTER_NAME: "c1"}.items()
                ],
            }
        ],
    )
    clock.advance(60)
    provider = provider_for(emulator, clock, tmp_path)

    with caplog.at_level(logging.WARNING, logger="steadyscale.ray"):
        assert len(provider.non_terminated_nodes({})) == 1
        assert len(provider.create_node(NODE_CONFIG, WORKER, 1)) == 1

    assert not provider.state.is_new
    assert not [r for r in caplog.records if "adopted" in r.getMessage()]


def test_the_hold_is_off_with_lost_state_hold_seconds_zero(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, first, _, _ = running_cluster(fake_emulator, tmp_path, running=2, invisible=0)

    after = provider_for(
        emulator, clock, tmp_path, lost_state_hold_seconds=0, **lose(first, "deleted", tmp_path)
    )

    assert len(after.create_node(NODE_CONFIG, WORKER, 1)) == 1


def test_after_a_lost_state_file_stopped_nodes_are_still_reused_once_the_hold_is_over(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("none")
    first = provider_for(emulator, clock, tmp_path, cache_stopped_nodes=True)
    running = sorted(first.create_node(NODE_CONFIG, WORKER, 2))
    stopped = sorted(first.create_node(NODE_CONFIG, WORKER, 2))
    clock.advance(5)
    first.non_terminated_nodes({})
    first.terminate_nodes(stopped)
    clock.advance(120)
    assert set(truth_of(emulator, stopped).values()) == {InstanceState.STOPPED}

    after = provider_for(
        emulator, clock, tmp_path, cache_stopped_nodes=True, **lose(first, "deleted", tmp_path)
    )

    assert sorted(after.non_terminated_nodes({})) == running
    assert after.create_node(NODE_CONFIG, WORKER, 2) == {}, "held"
    clock.advance(300)
    assert sorted(after.create_node(NODE_CONFIG, WORKER, 2)) == stopped
    assert emulator.calls.count("RunInstances") == 2, "nothing new launched"


def test_a_new_state_file_that_cannot_list_yet_launches_only_once_the_hold_is_over(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, first, _, _ = running_cluster(fake_emulator, tmp_path, running=2, invisible=0)
    after = provider_for(emulator, clock, tmp_path, **lose(first, "deleted", tmp_path))
    emulator.inject("server_error", "DescribeInstances", count=1000)

    assert after.create_node(NODE_CONFIG, WORKER, 1) == {}, "it cannot tell: held"
    clock.advance(300)
    assert len(after.create_node(NODE_CONFIG, WORKER, 1)) == 1


def test_a_provider_restarted_within_the_hold_keeps_it(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, first, _, hidden = running_cluster(
        fake_emulator, tmp_path, running=2, invisible=2
    )
    adopting = provider_for(emulator, clock, tmp_path, **lose(first, "deleted", tmp_path))
    adopting.non_terminated_nodes({})
    adopting.state.close()
    clock.advance(10)

    restarted = provider_for(emulator, clock, tmp_path)

    assert not restarted.state.is_new
    assert restarted.create_node(NODE_CONFIG, WORKER, 2) == {}, "still held"
    clock.advance(290)
    assert len(restarted.create_node(NODE_CONFIG, WORKER, 1)) == 1
    assert set(hidden) <= set(restarted.non_terminated_nodes({}))


def adapter_for(provider: EC2NodeProvider, tmp_path: Path) -> Any:
    """Ray's autoscaler v2 on the provider, through Ray's own adapter."""
    config = cluster_config("c1", dict(provider.provider_config), workers=5, subnet_ids=[])
    for node_type in config["available_node_types"].values():
        node_type["node_config"].pop("SubnetIds")
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return NodeProviderAdapter(provider, FileConfigReader(str(path)))


def launch_through(adapter: Any, count: int, request_id: str) -> None:
    adapter._do_launch({"worker": count}, request_id)
    adapter._node_launcher_executors.shutdown(wait=True)  # the launches are done
    assert adapter.poll_errors() == []


def test_ray_v2_sees_every_listed_node_with_its_request_after_a_lost_state_file(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    first = provider_for(emulator, clock, tmp_path)
    launch_through(adapter_for(first, tmp_path), 3, "req-1")
    clock.advance(60)
    launch_through(adapter_for(first, tmp_path), 2, "req-2")  # EC2 lists them in 30 s
    before = mutations(emulator)

    after = provider_for(emulator, clock, tmp_path, **lose(first, "new path", tmp_path))
    adapter = adapter_for(after, tmp_path)

    seen = adapter.get_non_terminated()
    assert sorted((i.node_type, i.request_id) for i in seen.values()) == [("worker", "req-1")] * 3
    clock.advance(30)  # what v2 requested and EC2 hid now shows, with its request
    seen = adapter.get_non_terminated()
    assert sorted(i.request_id for i in seen.values()) == ["req-1"] * 3 + ["req-2"] * 2
    assert mutations(emulator) == before, "nothing launched, stopped or terminated"
    launch_through(adapter, 1, "req-3")  # v2 waits for its requests itself: not held
    assert emulator.calls.count("RunInstances") == before["RunInstances"] + 1
