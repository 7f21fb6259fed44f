"""The event queue on boto3's SQS client: a real queue, or the emulator's (moto's SQS on
the same 127.0.0.1 endpoint). A queue named by name is looked up once, at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from steadyscale.errors import CloudError, ProviderSetupError
from steadyscale.providers.aws import translate
from steadyscale.providers.boto import new_client
from steadyscale.providers.events import QueueMessage

# SQS deletes at most ten receipts per call.
_DELETE_BATCH = 10


class SqsQueue:
    """One SQS queue: long-polling receives and batched deletes."""

    def __init__(
        self,
        *,
        region: str,
        queue_url: str | None = None,
        queue_name: str | None = None,
        endpoint_url: str | None = None,
        credentials: dict[str, str] | None = None,
        read_timeout: float = 30.0,
    ) -> None:
        # The read timeout must outlast a long poll (at most 20 s).
        config = Config(
            retries={"mode": "standard", "total_max_attempts": 3},
            read_timeout=max(read_timeout, 25.0),
            user_agent_extra="steadyscale",
        )
        self._sqs: Any = new_client(
            "sqs",
            region=region,
            endpoint_url=endpoint_url,
            config=config,
            credentials=credentials,
        )
        self.calls = 0
        if queue_url is None:
            if queue_name is None:
                raise ProviderSetupError("events: give queue_url or queue_name")
            queue_url = self._look_up(queue_name)
        self.url = queue_url

    @property
    def name(self) -> str:
        return self.url

    def _look_up(self, queue_name: str) -> str:
        try:
            return str(self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if "NonExistent" in code:
                raise ProviderSetupError(
                    f"events: no SQS queue named {queue_name!r}; create it with "
                    "`steadyscale events setup CONFIG` or fix events.queue_name"
                ) from None
            raise _ours(exc) from None
        except BotoCoreError as exc:
            raise _ours(exc) from None

    def receive(self, *, max_messages: int, wait_seconds: float) -> list[QueueMessage]:
        self.calls += 1
        try:
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=int(wait_seconds),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _ours(exc) from None
        return [
            QueueMessage(str(m["MessageId"]), str(m["ReceiptHandle"]), str(m.get("Body", "")))
            for m in answer.get("Messages", []) or []
        ]

    def delete(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), _DELETE_BATCH):
            batch = receipts[start : start + _DELETE_BATCH]
            self.calls += 1
            try:
                self._sqs.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(batch)],
                )
            except (ClientError, BotoCoreError) as exc:
                raise _ours(exc) from None


def _ours(exc: Exception) -> Exception:
    translated = translate(exc)
    if isinstance(translated, CloudError):
        return translated
    return CloudError("SQS", str(exc))
