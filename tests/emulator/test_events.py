"""EC2's events through EventBridge: each event type reaches a rule's SQS queue in AWS's
shape after the matching change of the ground truth; the spot warning leads the
interruption by its two (scaled) minutes; ground truth records every event."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from steadyscale.emulator import Emulator
from steadyscale.emulator.pytest_plugin import EmulatorFactory
from steadyscale.retries.clock import FakeClock
from tests.conftest import QUIET, FakeEmulator, launch

ENVELOPE_KEYS = {
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
}
SPOT: dict[str, Any] = {"InstanceMarketOptions": {"MarketType": "spot"}}
NO_DELIVERY_FAULTS: dict[str, Any] = {
    "delivery": {
        "delay": {"median": 0, "p99": 0, "max": 0},
        "duplicate_probability": 0,
        "reorder_probability": 0,
        "loss_probability": 0,
    }
}


class Listener:
    """A queue and a rule on the default bus for every event EC2 and AWS Health send."""

    def __init__(self, emu: Emulator) -> None:
        self.sqs = emu.client(service="sqs")
        self.url = self.sqs.create_queue(QueueName="ec2-events")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events = emu.client(service="events")
        events.put_rule(Name="ec2", EventPattern=json.dumps({"source": ["aws.ec2", "aws.health"]}))
        events.put_targets(Rule="ec2", Targets=[{"Id": "q", "Arn": arn}])

    def drain(self, wait: int = 0) -> list[dict[str, Any]]:
        """Every message now in the queue (deleted), in the order received."""
        bodies: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
            ).get("Messages", [])
            if not got:
                return bodies
            for message in got:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            wait = 0


def _events(profile: str = "realistic", **events: Any) -> dict[str, Any]:
    merged = {**NO_DELIVERY_FAULTS, **events}
    return {"events": merged}


def _states(bodies: list[dict[str, Any]], instance_id: str) -> list[str]:
    return [
        b["detail"]["state"]
        for b in bodies
        if b["detail-type"] == "EC2 Instance State-change Notification"
        and b["detail"]["instance-id"] == instance_id
    ]


def test_state_changes_arrive_in_aws_shape_on_each_true_change(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("realistic", **_events())
    listener = Listener(emu)
    (iid,) = launch(ec2)
    first = listener.drain()
    assert _states(first, iid) == ["pending"]
    body = first[0]
    assert set(body) == ENVELOPE_KEYS
    assert body["source"] == "aws.ec2" and body["version"] == "0"
    assert body["account"] == emu.app.account_id and body["region"] == "us-east-1"
    assert body["resources"] == [f"arn:aws:ec2:us-east-1:{emu.app.account_id}:instance/{iid}"]
    assert body["detail"] == {"instance-id": iid, "state": "pending"}
    assert body["time"] == "1970-01-01T00:00:00Z"  # the emulated clock, to the second
    assert listener.drain() == []  # nothing happened, nothing is told
    clock.advance(300)
    assert _states(listener.drain(), iid) == ["running"]
    ec2.terminate_instances(InstanceIds=[iid])
    assert _states(listener.drain(), iid) == ["shutting-down"]
    ec2.terminate_instances(InstanceIds=[iid])  # no true change: no event
    clock.advance(300)
    assert _states(listener.drain(), iid) == ["terminated"]
    # Ground truth holds every event, with the change it tells of.
    truth = emu.events()
    assert [e["event"]["detail"]["state"] for e in truth] == [
        "pending",
        "running",
        "shutting-down",
        "terminated",
    ]
    history = [s for _, s, _ in emu.app.control.truth("us-east-1", include_gone=True)[0].history]
    assert history == ["pending", "running", "shutting-down", "terminated"]
    for event in truth:  # one copy each, handed over once due (the clock jumps in steps)
        assert len(event["delivered"]) == len(event["due"]) == 1
        assert event["delivered"][0] >= event["due"][0] == event["emitted_at"]


def test_the_pending_event_comes_before_describe_instances_shows_the_instance(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("realistic", **_events())
    ids = launch(ec2, 5)
    pending = [e for e in emu.events() if e["event"]["detail"]["state"] == "pending"]
    assert sorted(e["instance_id"] for e in pending) == sorted(ids)
    assert not any(e["listed"] for e in pending)  # EC2 tells before a listing shows it


def test_a_warning_comes_the_warning_lead_before_the_interruption(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", **_events())
    listener = Listener(emu)
    (iid,) = launch(ec2, **SPOT)
    listener.drain()
    clock.advance(10)
    assert emu.warn([iid]) == [iid]
    (warning,) = listener.drain()
    assert set(warning) == ENVELOPE_KEYS
    assert warning["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert warning["source"] == "aws.ec2"
    assert warning["detail"] == {"instance-id": iid, "instance-action": "terminate"}
    clock.advance(119)
    assert emu.truth()[0].state == "running"
    assert listener.drain() == []
    clock.advance(1)
    assert _states(listener.drain(), iid) == ["shutting-down", "terminated"]
    assert emu.truth(include_gone=True)[0].interrupted


def test_random_interruptions_are_warned_two_minutes_ahead_with_rebalance_before(
    fake_emulator: FakeEmulator,
) -> None:
    lead = {"median": 300, "p99": 300, "max": 300}
    emu, clock, ec2 = fake_emulator(
        "none",
        spot={"interruption_rate_per_hour": 2},
        **_events(rebalance={"probability": 1, "lead": lead}),
    )
    listener = Listener(emu)
    ids = launch(ec2, 20, **SPOT)
    for _ in range(36):
        clock.advance(100)
        emu.app.pump()
    bodies = listener.drain()
    truth = {i.instance_id: i for i in emu.truth(include_gone=True)}
    interrupted = [i for i in ids if truth[i].interrupted]
    assert len(interrupted) >= 5
    for iid in interrupted:
        ended = truth[iid].terminate_requested_at
        assert ended is not None
        warned = _emitted(emu, "EC2 Spot Instance Interruption Warning", iid)
        rebalanced = _emitted(emu, "EC2 Instance Rebalance Recommendation", iid)
        # Warned two minutes ahead (at launch when it comes sooner than that).
        assert warned == [max(0.0, ended - 120)]
        assert rebalanced == [max(0.0, ended - 420)]
        kinds = [b["detail-type"] for b in bodies if b["detail"]["instance-id"] == iid]
        assert kinds.index("EC2 Instance Rebalance Recommendation") < kinds.index(
            "EC2 Spot Instance Interruption Warning"
        )
    assert _emitted(emu, "EC2 Spot Instance Interruption Warning", None) == sorted(
        max(0.0, (truth[i].terminate_requested_at or 0) - 120) for i in interrupted
    )


def _emitted(emu: Emulator, detail_type: str, instance_id: str | None) -> list[float]:
    return sorted(
        e["emitted_at"]
        for e in emu.events()
        if e["event"]["detail-type"] == detail_type
        and (instance_id is None or e["instance_id"] == instance_id)
    )


def test_rebalance_recommendation_on_demand(fake_emulator: FakeEmulator) -> None:
    emu, _, ec2 = fake_emulator("none", **_events())
    listener = Listener(emu)
    (iid,) = launch(ec2, **SPOT)
    listener.drain()
    assert emu.recommend_rebalance([iid, "i-00000000000000000"]) == [iid]
    (body,) = listener.drain()
    assert set(body) == ENVELOPE_KEYS
    assert body["detail-type"] == "EC2 Instance Rebalance Recommendation"
    assert body["detail"] == {"instance-id": iid}
    assert emu.truth()[0].state == "running"  # a recommendation takes nothing


def test_scheduled_retirement_is_announced_by_aws_health_before_its_deadline(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", **_events())
    listener = Listener(emu)
    (iid,) = launch(ec2)
    listener.drain()
    clock.advance(1000)
    assert emu.retire([iid], lead=600) == [iid]
    (notice,) = listener.drain()
    assert set(notice) == ENVELOPE_KEYS
    assert notice["source"] == "aws.health"
    assert notice["detail-type"] == "AWS Health Event"
    assert notice["resources"] == [iid]
    detail = notice["detail"]
    assert detail["service"] == "EC2"
    assert detail["eventTypeCode"] == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    assert detail["eventTypeCategory"] == "scheduledChange"
    assert detail["affectedEntities"] == [{"entityValue": iid}]
    assert detail["startTime"] == "Thu, 01 Jan 1970 00:26:40 GMT"  # 1000 + 600 s
    clock.advance(599)
    assert emu.truth()[0].state == "running"
    clock.advance(1)
    assert _states(listener.drain(), iid) == ["shutting-down", "terminated"]


def test_random_retirements_follow_the_knob(fake_emulator: FakeEmulator) -> None:
    lead = {"median": 100, "p99": 100, "max": 100}
    emu, clock, ec2 = fake_emulator(
        "none", **_events(retirement={"rate_per_hour": 3, "lead": lead})
    )
    ids = launch(ec2, 10)
    clock.advance(3600)
    notices = [e for e in emu.events() if e["event"]["source"] == "aws.health"]
    assert len(notices) >= 3
    truth = {i.instance_id: i for i in emu.truth(include_gone=True)}
    for notice in notices:
        retired = truth[notice["instance_id"]]
        assert retired.terminate_requested_at == pytest.approx(notice["emitted_at"] + 100)
    assert {n["instance_id"] for n in notices} <= set(ids)


def test_impaired_status_checks_show_in_describe_instance_status(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    ids = launch(ec2, 2)
    assert emu.impair(ids[:1]) == ids[:1]
    statuses = {
        s["InstanceId"]: s
        for s in ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    }
    assert statuses[ids[0]]["InstanceStatus"]["Status"] == "impaired"
    assert statuses[ids[0]]["InstanceStatus"]["Details"] == [
        {"Name": "reachability", "Status": "failed"}
    ]
    assert statuses[ids[0]]["SystemStatus"]["Status"] == "ok"
    assert statuses[ids[1]]["InstanceStatus"]["Status"] == "ok"
    assert emu.truth()[0].impaired
    impaired_only = ec2.describe_instance_status(
        Filters=[{"Name": "instance-status.status", "Values": ["impaired"]}]
    )["InstanceStatuses"]
    assert [s["InstanceId"] for s in impaired_only] == ids[:1]
    failed = ec2.describe_instance_status(
        Filters=[{"Name": "instance-status.reachability", "Values": ["failed"]}]
    )["InstanceStatuses"]
    assert [s["InstanceId"] for s in failed] == ids[:1]
    emu.impair(ids[:1], impaired=False)
    answer = ec2.describe_instance_status(InstanceIds=ids[:1])["InstanceStatuses"]
    assert answer[0]["InstanceStatus"]["Status"] == "ok"


def test_random_impairments_follow_the_knob(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", **_events(impairment={"rate_per_hour": 5}))
    ids = launch(ec2, 10)
    clock.advance(3600)
    impaired = [i for i in emu.truth() if i.impaired]
    assert len(impaired) >= 5
    answer = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    shown = {s["InstanceId"] for s in answer if s["InstanceStatus"]["Status"] == "impaired"}
    assert shown == {i.instance_id for i in impaired}


def test_events_are_delivered_on_the_scaled_clock_without_ec2_calls(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    # 120 emulated seconds pass in 0.12 real ones: the warning's interruption reaches a
    # consumer that only long-polls its queue.
    emu = ec2_emulator_factory("none", time_scale=0.001)
    listener = Listener(emu)
    (iid,) = launch(emu.client(), **SPOT)
    emu.warn([iid])
    started = time.monotonic()
    seen: list[str] = []
    while "terminated" not in seen and time.monotonic() - started < 10:
        seen += _states(listener.drain(wait=1), iid)
    assert seen[-2:] == ["shutting-down", "terminated"]


def test_the_same_seed_emits_the_same_events(ec2_emulator_factory: EmulatorFactory) -> None:
    def run() -> list[tuple[str, str, float, list[float]]]:
        emu = ec2_emulator_factory("realistic", clock=FakeClock(), seed=7, **QUIET)
        launch(emu.client(), 5)
        emu.app.control.truth("us-east-1")
        return [
            (e["event"]["id"], e["event"]["detail"]["state"], e["emitted_at"], e["due"])
            for e in emu.events()
        ]

    assert run() == run()
