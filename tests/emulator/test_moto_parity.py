"""With profile ``none`` the emulator answers as moto does; where moto differs from EC2,
the emulator behaves as EC2 in every profile."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.conftest import AMI, CLUSTER_TAG, FakeEmulator, error_code, launch, listed


def _scenario(ec2: Any) -> list[tuple[str, str, str, str]]:
    """Launch, tag, stop, terminate; return what DescribeInstances shows, id-free."""
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(
            ImageId=AMI,
            MinCount=3,
            MaxCount=3,
            InstanceType="t3.micro",
            TagSpecifications=[CLUSTER_TAG],
        )["Instances"]
    ]
    ec2.create_tags(Resources=ids[:1], Tags=[{"Key": "role", "Value": "head"}])
    ec2.stop_instances(InstanceIds=ids[1:2])
    ec2.terminate_instances(InstanceIds=ids[2:])
    shown = []
    for reservation in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for inst in reservation["Instances"]:
            tags = ",".join(sorted(f"{t['Key']}={t['Value']}" for t in inst.get("Tags", [])))
            shown.append(
                (
                    inst["InstanceType"],
                    inst["State"]["Name"],
                    tags,
                    inst["Placement"]["AvailabilityZone"],
                )
            )
    return sorted(shown)


def test_profile_none_answers_like_moto(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    with mock_aws():
        plain = boto3.client(
            "ec2",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        expected = _scenario(plain)
    assert _scenario(ec2) == expected


def test_profile_none_shows_a_new_instance_at_once_and_running(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (fresh,) = launch(ec2)
    assert listed(ec2, Filters=[{"Name": "tag:cluster", "Values": ["c1"]}]) == {fresh: "running"}
    ec2.create_tags(Resources=[fresh], Tags=[{"Key": "a", "Value": "b"}])


def test_max_count_launches_up_to_max_when_capacity_allows(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    assert len(launch(ec2, 7, MinCount=1)) == 7


def test_run_instances_answer_says_pending(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    answer = ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2)["Instances"]
    assert {i["State"]["Name"] for i in answer} == {"pending"}
    assert all(i["PrivateIpAddress"] and i["Placement"]["AvailabilityZone"] for i in answer)


def test_new_instances_boot_from_pending_to_running(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", boot={"median": 20, "p99": 40, "max": 60})
    ids = launch(ec2, 10)
    assert set(listed(ec2).values()) == {"pending"}
    clock.advance(60)
    assert set(listed(ec2).values()) == {"running"}
    truth = emu.truth()
    assert all(i.running_at is not None and 0 < i.running_at - i.launched_at <= 60 for i in truth)
    assert len({i.running_at for i in truth}) > 1  # each instance boots in its own time
    assert sorted(ids) == sorted(i.instance_id for i in truth)


def test_max_results_counts_instances_not_reservations(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    launch(ec2, 12)
    launch(ec2, 3)
    page = ec2.describe_instances(MaxResults=5)
    assert sum(len(r["Instances"]) for r in page["Reservations"]) == 5
    assert page["NextToken"]
    sizes = [
        sum(len(r["Instances"]) for r in p["Reservations"])
        for p in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5})
    ]
    assert sizes == [5, 5, 5]


def test_max_results_out_of_range_is_refused(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(MaxResults=2000)
    assert error_code(caught.value) == "InvalidParameterValue"
    (fresh,) = launch(ec2)
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(InstanceIds=[fresh], MaxResults=5)
    assert error_code(caught.value) == "InvalidParameterCombination"


def test_create_tags_on_unknown_id_is_not_found(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    with pytest.raises(ClientError) as caught:
        ec2.create_tags(Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"


def test_terminate_is_idempotent(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", shutdown={"median": 5, "p99": 5, "max": 5})
    (fresh,) = launch(ec2)
    first = ec2.terminate_instances(InstanceIds=[fresh])["TerminatingInstances"][0]
    again = ec2.terminate_instances(InstanceIds=[fresh])["TerminatingInstances"][0]
    assert first["PreviousState"]["Name"] == "running"
    assert again["PreviousState"]["Name"] == again["CurrentState"]["Name"] == "shutting-down"
    clock.advance(5)
    done = ec2.terminate_instances(InstanceIds=[fresh])["TerminatingInstances"][0]
    assert done["CurrentState"]["Name"] == "terminated"


def test_other_actions_pass_through_to_moto(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert "us-east-1a" in {z["ZoneName"] for z in zones}
    subnets = ec2.describe_subnets()["Subnets"]
    subnet = next(s for s in subnets if s["AvailabilityZone"] == "us-east-1c")
    launch(ec2, SubnetId=subnet["SubnetId"])
    assert emu.truth()[0].availability_zone == "us-east-1c"


def test_stop_and_start_are_mirrored_in_ground_truth(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (fresh,) = launch(ec2)
    ec2.stop_instances(InstanceIds=[fresh])
    assert emu.truth()[0].state.value == "stopped"
    ec2.start_instances(InstanceIds=[fresh])
    assert emu.truth()[0].state.value == "running"


def test_describe_instance_status_hides_invisible_instances(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    with pytest.raises(ClientError):
        ec2.describe_instance_status(InstanceIds=[fresh], IncludeAllInstances=True)
    assert ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"] == []
    clock.advance(300)
    statuses = ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    assert [s["InstanceId"] for s in statuses] == [fresh]


def test_two_emulators_in_one_process_do_not_share_instances(fake_emulator: FakeEmulator) -> None:
    first, _, ec2_a = fake_emulator("none")
    second, _, ec2_b = fake_emulator("none")
    launch(ec2_a, 2)
    assert listed(ec2_b) == {}
    assert len(second.truth()) == 0 and len(first.truth()) == 2
