"""The Ray provider's fleet launches: a node_config with ``InstanceTypes`` launches by one
CreateFleet from a launch template it makes (waiting until EC2 shows it), Ray's tags reach
the instances, and a lost answer is resent identically (nothing launched twice)."""

from __future__ import annotations

from pathlib import Path

from steadyscale.core.instances import TAG_REQUEST
from tests.conftest import AMI, FakeEmulator
from tests.ray.test_ray_provider import LAG_30, WORKER, provider_for

FLEET_CONFIG = {
    "ImageId": AMI,
    "InstanceTypes": ["m5.large", "c5.large", "r5.large"],
    "InstanceMarketOptions": {"MarketType": "spot"},
}


def test_instance_types_launch_one_fleet_with_rays_tags(
    fake_emulator: FakeEmulator, tmp_path: Path
) -> None:
    emulator, clock, ec2 = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path)
    created = provider.create_node(FLEET_CONFIG, WORKER, 4)
    assert len(created) == 4
    truth = {i.instance_id: i for i in emulator.truth()}
    assert set(truth) == set(created)
    assert {i.market for i in truth.values()} == {"spot"}
    assert emulator.calls.count("CreateFleet", "ok") == 1
    assert emulator.calls.count("RunInstances") == 0
    for node_id in created:
        assert {k: provider.node_tags(node_id)[k] for k in WORKER} == WORKER
    clock.advance(120)
    provider.non_terminated_nodes({})  # a listing flushes the tags EC2 did not take yet
    for node_id in created:
        tags = {
            t["Key"]: t["Value"]
            for t in ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [node_id]}])[
                "Tags"
            ]
        }
        assert tags["ray-user-node-type"] == "cpu" and TAG_REQUEST in tags
    # The template is made once: a second launch reuses it.
    provider.create_node(FLEET_CONFIG, WORKER, 1)
    assert emulator.calls.count("CreateLaunchTemplate", "ok") == 1


def test_a_lost_fleet_answer_launches_once(fake_emulator: FakeEmulator, tmp_path: Path) -> None:
    emulator, clock, _ = fake_emulator("realistic", **LAG_30)
    provider = provider_for(emulator, clock, tmp_path, max_attempts=1)
    emulator.inject("lost_response", "CreateFleet", count=1)
    created = provider.create_node(FLEET_CONFIG, WORKER, 3)
    assert len(created) == 3
    assert len(emulator.truth()) == 3, "the retry reused the ClientToken"
    assert emulator.calls.count("CreateFleet") == 2
