"""iam-policy: the printed policy covers every call a full scale cycle makes on the
emulator, and grants nothing that went unused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends

from steadyscale.app.cli import main
from steadyscale.config import parse_config
from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.core.lifecycle import Status
from steadyscale.ec2model.calllog import CallRecord
from steadyscale.ops.iam import build_policy, policy_actions
from tests.cluster import Cluster

ClusterFactory = Callable[..., Cluster]
PROFILE = "steadyscale-node"
NODE_CONFIG = {
    "InstanceType": "m5.large",
    "ImageId": "ami-12345678",
    "IamInstanceProfile": {"Name": PROFILE},
}


def permissions_for(record: CallRecord) -> set[str]:
    """What IAM authorises for one EC2 call, after EC2's authorization reference: the
    action itself; CreateTags for the tags of a TagSpecifications; PassRole for the role of
    an instance profile."""
    needed = {f"ec2:{record.action}"}
    if "TagSpecification" in record.parameters:
        needed.add("ec2:CreateTags")
    if "IamInstanceProfile" in record.parameters:
        needed.add("iam:PassRole")
    return needed


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in policy["Statement"] if s["Sid"] == sid]
    assert len(found) == 1, sid
    return found[0]


def _resource_types(statement: dict[str, Any]) -> set[str]:
    resources = statement["Resource"]
    return {
        r.split(":", 5)[5].split("/")[0]
        for r in ([resources] if isinstance(resources, str) else resources)
    }


def test_a_full_cycle_uses_every_permission_of_the_policy_and_no_other(
    cluster_factory: ClusterFactory,
) -> None:
    cluster = cluster_factory(
        "realistic",
        available_node_types={
            "cpu": {"node_config": NODE_CONFIG, "resources": {"CPU": 2}, "max_workers": 10}
        },
    )
    iam_backends[cluster.emulator.app.account_id]["aws"].create_instance_profile(
        name=PROFILE, path="/", role_names=[]
    )
    policy = build_policy(cluster.config)

    cluster.autoscaler.provider.preflight()  # the daemon's start-up check
    cluster.demand(4)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 4)
    # Launches must carry the cluster tag on the instance and its volumes.
    condition = _statement(policy, "LaunchOnlyWithClusterTag")["Condition"]["StringEquals"]
    assert condition == {f"aws:RequestTag/{TAG_CLUSTER}": "test"}
    # Read from moto directly: a DescribeVolumes of ours would land in the call log.
    backend = ec2_backends[cluster.emulator.app.account_id]["us-east-1"]
    volumes = list(backend.volumes.values())
    assert len(volumes) == 4
    assert all(
        {"Key": TAG_CLUSTER, "Value": "test"}
        in [{"Key": t["key"], "Value": t["value"]} for t in v.get_tags()]
        for v in volumes
    )
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive() and not cluster.ledger.nodes())

    records = cluster.emulator.calls.records()
    assert {r.action for r in records} == {
        "DescribeInstances",
        "RunInstances",
        "TerminateInstances",
    }
    used = set().union(*(permissions_for(r) for r in records))
    assert used == policy_actions(policy)
    # CreateTags is granted for exactly the resource types the launches tagged.
    tagged = {t for r in records for t in r.tagged_resource_types}
    assert (
        _resource_types(_statement(policy, "TagOnlyAtLaunch")) == tagged == {"instance", "volume"}
    )
    # Only instances with the cluster tag can be terminated, and every one had it.
    terminate = _statement(policy, "TerminateOnlyClusterInstances")
    assert terminate["Condition"]["StringEquals"] == {f"ec2:ResourceTag/{TAG_CLUSTER}": "test"}
    everything = cluster.emulator.truth(include_gone=True)
    assert everything and all(
        i.tags.get(TAG_CLUSTER) == "test" and i.state.value == "terminated" for i in everything
    )
    launch = _statement(policy, "LaunchResources")["Resource"]
    assert "arn:aws:ec2:us-east-1::image/ami-12345678" in launch


def _config(**node: Any) -> dict[str, Any]:
    return {
        "cluster_name": "prod",
        "provider": {"type": "aws", "region": "eu-west-1", "subnets": ["subnet-0a", "subnet-0b"]},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-0abc", **node},
                "resources": {"CPU": 2},
                "market": "spot",
            }
        },
    }


def test_launch_resources_are_scoped_to_the_configured_ones() -> None:
    policy = build_policy(parse_config(_config(SecurityGroupIds=["sg-01"], KeyName="ops")))
    launch = _statement(policy, "LaunchResources")["Resource"]
    assert launch == [
        "arn:aws:ec2:eu-west-1::image/ami-0abc",
        "arn:aws:ec2:eu-west-1:*:subnet/subnet-0a",
        "arn:aws:ec2:eu-west-1:*:subnet/subnet-0b",
        "arn:aws:ec2:eu-west-1:*:network-interface/*",
        "arn:aws:ec2:eu-west-1:*:security-group/sg-01",
        "arn:aws:ec2:eu-west-1:*:key-pair/ops",
        "arn:aws:ec2:eu-west-1:*:spot-instances-request/*",
    ]
    # No instance profile: no iam:PassRole at all.
    assert "iam:PassRole" not in policy_actions(policy)


def test_pass_role_is_scoped_to_the_profiles_account() -> None:
    arn = "arn:aws:iam::123456789012:instance-profile/workers"
    policy = build_policy(parse_config(_config(IamInstanceProfile={"Arn": arn})))
    statement = _statement(policy, "PassInstanceProfileRole")
    assert statement["Resource"] == ["arn:aws:iam::123456789012:role/*"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}


def test_iam_policy_command_prints_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_config()))
    assert main(["iam-policy", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == build_policy(parse_config(_config()))
    path.write_text("cluster_name: prod\n")
    assert main(["iam-policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "provider" in err


def test_former_cluster_names_still_carried_are_allowed_too() -> None:
    """After a carry-over the old instances keep their tag: the daemon must still terminate
    them, and resend a launch that was in flight under it."""
    config = parse_config(_config())
    policy = build_policy(config, former_names=["old", "prod"])
    launch = _statement(policy, "LaunchOnlyWithClusterTag")["Condition"]["StringEquals"]
    terminate = _statement(policy, "TerminateOnlyClusterInstances")["Condition"]["StringEquals"]
    assert launch == {f"aws:RequestTag/{TAG_CLUSTER}": ["prod", "old"]}
    assert terminate == {f"ec2:ResourceTag/{TAG_CLUSTER}": ["prod", "old"]}
    assert build_policy(config, former_names=[]) == build_policy(config)


def test_a_fleet_cycle_uses_every_permission_of_the_policy_and_no_other(
    cluster_factory: ClusterFactory,
) -> None:
    fleet_config = {k: v for k, v in NODE_CONFIG.items() if k != "InstanceType"}
    cluster = cluster_factory(
        "realistic",
        available_node_types={
            "cpu": {
                "node_config": fleet_config,
                "instance_types": ["m5.large", "c5.large"],
                "market": "spot",
                "resources": {"CPU": 2},
                "max_workers": 10,
            }
        },
    )
    iam_backends[cluster.emulator.app.account_id]["aws"].create_instance_profile(
        name=PROFILE, path="/", role_names=[]
    )
    policy = build_policy(cluster.config)
    cluster.demand(3)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 3)
    # A changed node_config: its nodes are replaced from a new template version.
    spec = cluster.config.available_node_types["cpu"]
    changed = spec.model_copy(update={"node_config": {**fleet_config, "ImageId": "ami-87654321"}})
    cluster.config = cluster.config.model_copy(update={"available_node_types": {"cpu": changed}})
    cluster.autoscaler.config = cluster.config
    cluster.run(
        lambda r: (
            r.settled
            and cluster.emulator.calls.count("CreateLaunchTemplateVersion", "ok") == 1
            and cluster.count(Status.READY) == 3
        )
    )
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive() and not cluster.ledger.nodes())
    records = cluster.emulator.calls.records()
    assert "RunInstances" not in {r.action for r in records}
    used = set().union(*(permissions_for(r) for r in records))
    # EC2 authorises a CreateFleet as RunInstances too, and passes the template's profile.
    used |= {"ec2:RunInstances", "iam:PassRole"}
    assert used == policy_actions(policy)
    assert _statement(policy, "FleetOnlyWithClusterTag")["Condition"]["StringEquals"] == {
        f"aws:RequestTag/{TAG_CLUSTER}": "test"
    }


def test_pass_role_only_with_an_instance_profile_for_fleets_too() -> None:
    data = _config()
    node = data["available_node_types"]["cpu"]
    node["node_config"].pop("InstanceType")
    node["instance_types"] = ["m5.large"]
    assert "iam:PassRole" not in policy_actions(build_policy(parse_config(data)))
    node["node_config"]["IamInstanceProfile"] = {"Name": "p"}
    assert "iam:PassRole" in policy_actions(build_policy(parse_config(data)))
