"""SQS and EventBridge on the emulator's endpoint: boto3 clients of those services pointed
at it work as on AWS, and a rule with an SQS target delivers what the bus routes to it."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError
from moto.sqs.models import Queue

from steadyscale.emulator.messaging.serving import _retention_check
from steadyscale.emulator.pytest_plugin import EmulatorFactory
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


def test_a_long_poll_waits_in_emulated_seconds(ec2_emulator_factory: EmulatorFactory) -> None:
    emu = ec2_emulator_factory("none", time_scale=0.01)
    sqs = emu.client(service="sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    started = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
    assert 0.2 <= time.monotonic() - started < 5  # 20 emulated seconds


def test_a_long_poll_ends_when_a_message_comes_and_leaves_ec2_free(
    ec2_emulator_factory: EmulatorFactory,
) -> None:
    emu = ec2_emulator_factory("none")
    sqs = emu.client(service="sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    answers: list[dict[str, object]] = []
    polling = threading.Thread(
        target=lambda: answers.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20))
    )
    started = time.monotonic()
    polling.start()
    launch(emu.client(), 2)  # EC2 answers while the poll waits
    emu.client(service="sqs").send_message(QueueUrl=url, MessageBody="hello")
    polling.join(timeout=10)
    assert time.monotonic() - started < 5
    (answer,) = answers
    assert [m["Body"] for m in answer["Messages"]] == ["hello"]  # type: ignore[attr-defined]


def test_a_bad_wait_is_refused_as_sqs_refuses_it(fake_emulator: FakeEmulator) -> None:
    emu, _, _ = fake_emulator("none")
    sqs = emu.client(service="sqs")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    with pytest.raises(ClientError) as caught:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert "InvalidParameterValue" in error_code(caught.value)


def test_a_receive_does_not_count_the_whole_queue_for_each_message(
    fake_emulator: FakeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's retention check computed every attribute of the queue (approximate counts:
    walks over all its messages) for each message received; the emulator's reads the
    retention period alone, so a burst of a thousand nodes' events does not stall EC2."""
    emu, _, _ = fake_emulator("none")
    sqs = emu.client(service="sqs")
    url = sqs.create_queue(QueueName="burst")["QueueUrl"]
    for start in range(0, 50, 10):
        entries = [{"Id": str(n), "MessageBody": f"m{n}"} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    walks: list[int] = []
    counted = Queue.approximate_number_of_messages

    def counting(queue: Queue) -> int:
        walks.append(1)
        return int(counted.fget(queue))  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "approximate_number_of_messages", property(counting))
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    assert len(got["Messages"]) == 10
    assert walks == []


def test_the_light_retention_check_keeps_motos_rule() -> None:
    class Held:
        message_retention_period = "60"

    class Backend:
        def get_queue(self, name: str) -> Held:
            return Held()

    class Sent:
        def __init__(self, age: float) -> None:
            self.sent_timestamp = (time.time() - age) * 1000

    valid = _retention_check(Backend())
    assert valid("q", Sent(age=10)) is True
    assert valid("q", Sent(age=61)) is False
