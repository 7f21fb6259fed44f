"""Each fault F1-F10 of the failure model, seen through plain boto3.

Every test makes the fault happen for a fresh instance, then moves the emulator's fake
clock past the delay the emulator drew and checks that the fault has ended.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from steadyscale.emulator import Fault, Operation
from tests.conftest import AMI, FakeEmulator, error_code, launch, listed


def test_f1_lookup_by_id_fails_with_not_found_until_visible(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    [truth] = emu.truth()
    delay = truth.visible_at[Operation.DESCRIBE_BY_ID] - truth.launched_at
    assert delay > 0

    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(InstanceIds=[fresh])
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"

    clock.advance(delay)
    reservations = ec2.describe_instances(InstanceIds=[fresh])["Reservations"]
    assert [i["InstanceId"] for r in reservations for i in r["Instances"]] == [fresh]


def test_f1_one_unknown_id_fails_the_whole_call(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (old,) = launch(ec2)
    clock.advance(200)
    (fresh,) = launch(ec2)

    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(InstanceIds=[old, fresh])
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"
    assert fresh in str(caught.value)
    # The instance-id filter omits the unknown id instead of failing.
    shown = listed(ec2, Filters=[{"Name": "instance-id", "Values": [old, fresh]}])
    assert set(shown) == {old}


def test_f2_listing_omits_fresh_instance_until_its_delay(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    [truth] = emu.truth()
    delay = truth.visible_at[Operation.LISTING] - truth.launched_at

    assert fresh not in listed(ec2)
    assert fresh not in listed(
        ec2, Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
    )
    clock.advance(delay)
    assert fresh in listed(ec2)


def test_f3_tag_filter_misses_instance_visible_by_id(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator(
        "realistic",
        visibility_by_operation={
            "describe_by_id": {"median": 0, "p99": 0, "max": 0},
            "listing": {"median": 0, "p99": 0, "max": 0},
            "tag_index": {"median": 20, "p99": 20, "max": 20},
        },
    )
    (fresh,) = launch(ec2)
    by_id = ec2.describe_instances(InstanceIds=[fresh])["Reservations"][0]["Instances"][0]
    assert {"Key": "cluster", "Value": "c1"} in by_id["Tags"]
    assert fresh in listed(ec2)
    assert fresh not in listed(ec2, Filters=[{"Name": "tag:cluster", "Values": ["c1"]}])

    clock.advance(20)
    assert fresh in listed(ec2, Filters=[{"Name": "tag:cluster", "Values": ["c1"]}])


def test_f3_tags_added_later_are_indexed_after_their_own_delay(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator(
        "none", visibility_by_operation={"tag_index": {"median": 10, "p99": 10, "max": 10}}
    )
    (fresh,) = launch(ec2)
    clock.advance(10)
    ec2.create_tags(Resources=[fresh], Tags=[{"Key": "role", "Value": "worker"}])
    assert fresh in listed(ec2, Filters=[{"Name": "tag:cluster", "Values": ["c1"]}])
    assert fresh not in listed(ec2, Filters=[{"Name": "tag:role", "Values": ["worker"]}])
    clock.advance(10)
    assert fresh in listed(ec2, Filters=[{"Name": "tag:role", "Values": ["worker"]}])


def test_f4_create_tags_on_fresh_id_fails_until_its_delay(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    [truth] = emu.truth()
    delay = truth.visible_at[Operation.CREATE_TAGS] - truth.launched_at
    tag = [{"Key": "role", "Value": "worker"}]

    with pytest.raises(ClientError) as caught:
        ec2.create_tags(Resources=[fresh], Tags=tag)
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"
    assert emu.truth()[0].tags == {"cluster": "c1"}

    clock.advance(delay)
    ec2.create_tags(Resources=[fresh], Tags=tag)
    assert emu.truth()[0].tags == {"cluster": "c1", "role": "worker"}


def test_f5_terminate_on_fresh_id_fails_and_the_instance_keeps_running(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    [truth] = emu.truth()
    delay = truth.visible_at[Operation.TERMINATE] - truth.launched_at

    with pytest.raises(ClientError) as caught:
        ec2.terminate_instances(InstanceIds=[fresh])
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"
    clock.advance(delay)
    assert emu.truth()[0].state.value in ("pending", "running")  # still there, billed

    answer = ec2.terminate_instances(InstanceIds=[fresh])["TerminatingInstances"][0]
    assert answer["CurrentState"]["Name"] == "shutting-down"
    clock.advance(200)
    assert emu.truth()[0].state.value == "terminated"


def test_f6_stale_read_shows_state_going_backwards(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator(
        "none",
        boot={"median": 10, "p99": 10, "max": 10},
        stale_reads={"probability": 1.0, "window": {"median": 5, "p99": 5, "max": 5}},
    )
    (fresh,) = launch(ec2)
    assert listed(ec2)[fresh] == "pending"
    clock.advance(10)  # booted: truth is running, reads inside the window are stale
    assert emu.truth()[0].state.value == "running"
    assert listed(ec2)[fresh] == "pending"
    clock.advance(5)
    assert listed(ec2)[fresh] == "running"


def test_f6_terminated_instance_stays_listed_for_retention_then_vanishes(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", terminated_retention_seconds=3600)
    (fresh,) = launch(ec2)
    ec2.terminate_instances(InstanceIds=[fresh])
    clock.advance(3599)
    assert listed(ec2)[fresh] == "terminated"
    assert ec2.describe_instances(InstanceIds=[fresh])["Reservations"]
    clock.advance(1)
    assert fresh not in listed(ec2)
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(InstanceIds=[fresh])
    assert error_code(caught.value) == "InvalidInstanceID.NotFound"
    assert [i.state.value for i in emu.truth(include_gone=True)] == ["terminated"]


def test_f7_run_instances_is_throttled_by_its_bucket_and_recovers(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", throttling={"enabled": True})
    for _ in range(5):  # the burst
        launch(ec2)
    with pytest.raises(ClientError) as caught:
        launch(ec2)
    assert error_code(caught.value) == "RequestLimitExceeded"
    clock.advance(0.5)  # refill 2 per second
    launch(ec2)
    with pytest.raises(ClientError):
        launch(ec2)
    assert emu.calls.count("RunInstances", "RequestLimitExceeded") == 2


def test_f7_instance_launch_resource_bucket_limits_instances(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator(
        "none",
        throttling={
            "enabled": True,
            "resource_buckets": {"RunInstances": {"capacity": 10, "refill_per_second": 2}},
        },
    )
    assert len(launch(ec2, 10)) == 10
    with pytest.raises(ClientError) as caught:
        launch(ec2, 2)
    assert error_code(caught.value) == "RequestLimitExceeded"
    clock.advance(1)
    assert len(launch(ec2, 2)) == 2


def test_f7_throttle_scale_shrinks_every_bucket(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", throttling={"enabled": True, "scale": 0.2})
    ec2.describe_instances()
    for _ in range(19):
        ec2.describe_instances()  # DescribeInstances burst is 100 * 0.2 = 20
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert error_code(caught.value) == "RequestLimitExceeded"


def test_f8_pool_without_capacity_fails_with_insufficient_capacity(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", capacity={"pools": {"m5.large/us-east-1a": 0}})
    with pytest.raises(ClientError) as caught:
        launch(ec2, Placement={"AvailabilityZone": "us-east-1a"})
    assert error_code(caught.value) == "InsufficientInstanceCapacity"
    assert "us-east-1a" in str(caught.value)
    assert len(launch(ec2, Placement={"AvailabilityZone": "us-east-1b"})) == 1
    assert (
        len(launch(ec2, InstanceType="c5.large", Placement={"AvailabilityZone": "us-east-1a"})) == 1
    )


def test_f8_partial_fulfilment_when_min_count_below_max_count(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", capacity={"pools": {"m5.large/*": 3}})
    assert len(launch(ec2, 5)) == 3
    with pytest.raises(ClientError) as caught:
        launch(ec2, 1)
    assert error_code(caught.value) == "InsufficientInstanceCapacity"


def test_f8_capacity_returns_when_instances_terminate(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", capacity={"default_pool_size": 2})
    ids = launch(ec2, 2)
    ec2.terminate_instances(InstanceIds=ids[:1])
    clock.advance(1)
    assert len(launch(ec2, 5)) == 1


def test_f8_vcpu_and_instance_limits(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", capacity={"vcpu_limit": 8})
    assert len(launch(ec2, 10)) == 4  # m5.large has 2 vCPUs
    with pytest.raises(ClientError) as caught:
        launch(ec2)
    assert error_code(caught.value) == "VcpuLimitExceeded"

    emu, clock, ec2 = fake_emulator("none", capacity={"instance_limit": 2})
    with pytest.raises(ClientError) as caught:
        launch(ec2, 3, MinCount=3)
    assert error_code(caught.value) == "InstanceLimitExceeded"


def test_f8_shortage_spell_ends_after_its_duration(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator(
        "none",
        capacity={
            "shortage_probability": 1.0,
            "shortage_duration": {"median": 60, "p99": 60, "max": 60},
        },
    )
    with pytest.raises(ClientError) as caught:
        launch(ec2)
    assert error_code(caught.value) == "InsufficientInstanceCapacity"
    clock.advance(59)
    with pytest.raises(ClientError):
        launch(ec2)  # still inside the first spell: no new draw
    assert len(emu.truth()) == 0


def test_f9_server_error_does_nothing(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    emu.inject(Fault.SERVER_ERROR, "RunInstances")
    with pytest.raises(ClientError) as caught:
        launch(ec2)
    assert error_code(caught.value) in ("InternalError", "Unavailable")
    assert emu.truth() == []


def test_f9_lost_run_instances_response_launched_anyway(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    emu.inject(Fault.LOST_RESPONSE, "RunInstances")
    with pytest.raises(ClientError) as caught:
        launch(ec2, 3, ClientToken="intent-1")
    assert error_code(caught.value) == "InternalError"
    launched = [i.instance_id for i in emu.truth()]
    assert len(launched) == 3  # launched while the client saw an error

    # Retrying with the same ClientToken returns the same instances; none is added.
    assert launch(ec2, 3, ClientToken="intent-1") == launched
    assert len(emu.truth()) == 3


def test_f9_timeout_drops_the_connection_after_launching(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", errors={"timeout_seconds": 7})
    emu.inject(Fault.TIMEOUT, "RunInstances")
    with pytest.raises(ConnectionClosedError):
        launch(ec2, ClientToken="intent-2")
    assert len(emu.truth()) == 1
    assert clock.sleeps == [7]  # the server held the answer for timeout_seconds
    assert emu.calls.count("RunInstances", "timeout") == 1


def test_f9_botocore_retry_with_same_token_does_not_duplicate(fake_emulator: FakeEmulator) -> None:
    emu, clock, _ = fake_emulator("none")
    ec2 = emu.client(retries={"mode": "standard", "total_max_attempts": 4})
    emu.inject(Fault.LOST_RESPONSE, "RunInstances")
    ids = launch(ec2, 2)  # botocore fills in a ClientToken and reuses it on retry
    assert sorted(ids) == sorted(i.instance_id for i in emu.truth())


def test_f9_client_token_with_changed_parameters_is_refused(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    launch(ec2, 2, ClientToken="intent-3")
    with pytest.raises(ClientError) as caught:
        launch(ec2, 3, ClientToken="intent-3")
    assert error_code(caught.value) == "IdempotentParameterMismatch"


def test_f10_spot_interruption_on_request(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", shutdown={"median": 5, "p99": 5, "max": 5})
    (spot,) = launch(ec2, InstanceMarketOptions={"MarketType": "spot"})
    (on_demand,) = launch(ec2)
    assert emu.interrupt([spot]) == [spot]
    assert listed(ec2)[spot] == "shutting-down"
    clock.advance(5)
    shown = ec2.describe_instances(InstanceIds=[spot])["Reservations"][0]["Instances"][0]
    assert shown["State"]["Name"] == "terminated"
    assert shown["StateReason"]["Code"] == "Server.SpotInstanceTermination"
    assert listed(ec2)[on_demand] == "running"
    assert [i.interrupted for i in emu.truth()] == [True, False]


def test_f10_spot_interruption_on_a_schedule(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", spot={"interruption_rate_per_hour": 3600})
    ids = launch(ec2, 5, InstanceMarketOptions={"MarketType": "spot"})
    on_demand = launch(ec2, 5)
    clock.advance(60)  # a mean time to interruption of 1 s
    truth = {i.instance_id: i for i in emu.truth()}
    assert all(truth[i].interrupted and truth[i].state.value == "terminated" for i in ids)
    assert not any(truth[i].interrupted for i in on_demand)


def test_injected_fault_hits_only_its_action(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    emu.inject(Fault.SERVER_ERROR, "TerminateInstances")
    ec2.describe_instances()
    launch(ec2)
    with pytest.raises(ClientError):
        ec2.terminate_instances(InstanceIds=[emu.truth()[0].instance_id])
    assert emu.calls.by_action()["TerminateInstances"] in ({"InternalError": 1}, {"Unavailable": 1})


def test_random_faults_follow_their_probabilities(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", errors={"server_error_probability": 0.2})
    failures = 0
    for _ in range(200):
        try:
            ec2.describe_availability_zones()
        except ClientError:
            failures += 1
    assert 20 <= failures <= 65


def test_image_id_is_passed_through_to_moto(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]
    assert instance["ImageId"] == AMI


def test_f2_listing_flickers_for_visible_instances(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", stale_reads={"listing_flicker_probability": 0.5})
    ids = set(launch(ec2, 20))
    sizes = [len(set(listed(ec2)) & ids) for _ in range(10)]
    assert all(0 < n < 20 for n in sizes)
    assert ec2.describe_instances(InstanceIds=sorted(ids))["Reservations"]  # by id: steady
