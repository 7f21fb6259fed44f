"""The event queue on boto3's SQS client, against the emulator's SQS (moto's, on the same
127.0.0.1 endpoint): receive, batched delete, a queue found by name, one clear error for a
missing one; the threaded inbox long-polls it beside the loop."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.emulator import Emulator
from steadyscale.errors import CloudError, ProviderSetupError
from steadyscale.loop.inbox import ThreadedInbox
from steadyscale.providers.events import EventQueue, QueueMessage
from steadyscale.providers.sqs import SqsQueue
from steadyscale.retries.clock import FakeClock
from steadyscale.testing.waiting import wait_for
from tests.conftest import FakeEmulator

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _queue(emu: Emulator, name: str = "steadyscale-events") -> tuple[SqsQueue, Any]:
    sqs = emu.client(service="sqs")
    sqs.create_queue(QueueName=name)
    queue = SqsQueue(
        region="us-east-1",
        queue_name=name,
        endpoint_url=emu.endpoint_url,
        credentials=CREDENTIALS,
    )
    return queue, sqs


def test_a_queue_named_by_name_receives_and_deletes_in_batches(
    fake_emulator: FakeEmulator,
) -> None:
    emu, _, _ = fake_emulator("none")
    queue, sqs = _queue(emu)
    as_protocol: EventQueue = queue
    assert as_protocol.name.endswith("/steadyscale-events")
    for n in range(15):
        sqs.send_message(QueueUrl=queue.url, MessageBody=f'{{"n": {n}}}')
    got = queue.receive(max_messages=10, wait_seconds=0)
    got += queue.receive(max_messages=10, wait_seconds=0)
    assert sorted(m.body for m in got) == sorted(f'{{"n": {n}}}' for n in range(15))
    queue.delete([m.receipt for m in got])  # two batches of at most ten
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_missing_queue_is_one_clear_line(fake_emulator: FakeEmulator) -> None:
    emu, _, _ = fake_emulator("none")
    with pytest.raises(ProviderSetupError, match=r"no SQS queue named .nope.*events setup"):
        SqsQueue(
            region="us-east-1",
            queue_name="nope",
            endpoint_url=emu.endpoint_url,
            credentials=CREDENTIALS,
        )


def test_a_receive_from_a_deleted_queue_is_a_cloud_error(fake_emulator: FakeEmulator) -> None:
    emu, _, _ = fake_emulator("none")
    queue, sqs = _queue(emu)
    sqs.delete_queue(QueueUrl=queue.url)
    with pytest.raises(CloudError):
        queue.receive(max_messages=1, wait_seconds=0)


def test_the_threaded_inbox_long_polls_beside_the_loop(fake_emulator: FakeEmulator) -> None:
    emu, _, _ = fake_emulator("none")
    queue, sqs = _queue(emu)
    errors: list[CloudError] = []
    inbox = ThreadedInbox(
        queue, FakeClock(), max_messages=10, wait_seconds=1, capacity=5, on_error=errors.append
    ).start()
    try:
        for n in range(8):
            sqs.send_message(QueueUrl=queue.url, MessageBody=str(n))
        taken: list[QueueMessage] = []

        def all_taken() -> bool:
            batch = inbox.take(3)
            assert len(batch) <= 3  # a take is bounded, whatever is buffered
            taken.extend(batch)
            return len(taken) >= 8

        wait_for(all_taken, 60, "the inbox to take all 8 messages")
        assert sorted(m.body for m in taken) == [str(n) for n in range(8)]
        assert inbox.flowing() and errors == []
        inbox.delete([m.receipt for m in taken])
    finally:
        inbox.close()
