"""SQS and EventBridge on the emulator's endpoint: boto3 clients of those services pointed
at it work as on AWS, and a rule with an SQS target delivers what the bus routes to it."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import FakeEmulator, error_code, launch


def test_sqs_and_eventbridge_deliver_a_put_event_to_a_rules_queue(
    fake_emulator: FakeEmulator,
) -> None:
    emu, _, ec2 = fake_emulator("none")
    sqs = emu.client(service="sqs")
    events = emu.client(service="events")
    url = sqs.create_queue(QueueName="steadyscale-events")["QueueUrl"]
    assert url.startswith(emu.endpoint_url)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    assert arn == f"arn:aws:sqs:us-east-1:{emu.app.account_id}:steadyscale-events"
    events.put_rule(
        Name="ec2-state",
        EventPattern=json.dumps({"source": ["my.app"], "detail-type": ["Thing Happened"]}),
    )
    events.put_targets(Rule="ec2-state", Targets=[{"Id": "queue", "Arn": arn}])
    answer = events.put_events(
        Entries=[
            {"Source": "my.app", "DetailType": "Thing Happened", "Detail": '{"n": 1}'},
            {"Source": "other.app", "DetailType": "Thing Happened", "Detail": '{"n": 2}'},
        ]
    )
    assert answer["FailedEntryCount"] == 0
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    bodies = [json.loads(m["Body"]) for m in got["Messages"]]
    assert [(b["source"], b["detail"]) for b in bodies] == [("my.app", {"n": 1})]
    assert bodies[0]["region"] == "us-east-1"
    # EC2 on the same endpoint is untouched by it.
    assert len(launch(ec2, 2)) == 2
    assert emu.app.messaging.calls()["sqs:ReceiveMessage"] == 1
    assert emu.calls.count() == 1  # the EC2 call log holds EC2's calls only


def test_sqs_errors_come_back_as_sqs_errors(fake_emulator: FakeEmulator) -> None:
    emu, _, _ = fake_emulator("none")
    sqs = emu.client(service="sqs")
    with pytest.raises(ClientError) as caught:
        sqs.get_queue_url(QueueName="no-such-queue")
    assert "NonExistentQueue" in error_code(caught.value)


def test_two_emulators_keep_their_queues_apart(fake_emulator: FakeEmulator) -> None:
    first, _, _ = fake_emulator("none")
    second, _, _ = fake_emulator("none")
    first.client(service="sqs").create_queue(QueueName="q")
    assert second.client(service="sqs").list_queues().get("QueueUrls", []) == []
