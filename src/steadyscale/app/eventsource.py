"""The event queue of a runtime whose config has an ``events`` block: an SQS client at the
provider's endpoint and region (the embedded emulator's own when it runs one), read by a
thread that long-polls it beside the loop. Opened once per runtime, closed with it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from steadyscale.config import EventsConfig
from steadyscale.errors import CloudError
from steadyscale.loop.inbox import Inbox, ThreadedInbox
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.sqs import SqsQueue
from steadyscale.retries.clock import Clock

if TYPE_CHECKING:
    from steadyscale.app.runtime import Runtime
    from steadyscale.config import ClusterConfig
    from steadyscale.emulator import Emulator

log = logging.getLogger("steadyscale.events")

__all__ = ["EMULATOR_CREDENTIALS", "Inbox", "open_inbox", "threaded_inbox"]

EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def open_inbox(runtime: Runtime) -> Inbox | None:
    """The runtime's inbox, opened at its first use; None without an ``events`` block or
    on the memory backend (no queue there: the simulator polls)."""
    config = runtime.config
    if config.events is None or config.provider.type == "memory":
        return None
    if runtime.inbox is None:
        endpoint = config.provider.endpoint_url
        if runtime.emulator is not None:
            endpoint = runtime.emulator.endpoint_url
            _set_up_emulated(runtime.emulator, config)
        embedded = config.provider.type == "emulator" or endpoint is not None
        queue = SqsQueue(
            region=config.provider.region,
            queue_url=config.events.queue_url,
            queue_name=config.events.queue_name,
            endpoint_url=endpoint,
            credentials=EMULATOR_CREDENTIALS if config.provider.type == "emulator" else None,
        )
        log.info("reading EC2's events from %s%s", queue.name, " (emulated)" if embedded else "")
        runtime.inbox = threaded_inbox(queue, runtime.clock, runtime.metrics, config.events)
    return runtime.inbox


def _set_up_emulated(emulator: Emulator, config: ClusterConfig) -> None:
    """The embedded emulator starts empty: make in it the queue and rules that `steadyscale
    events setup` makes on AWS, so its EC2 events reach the queue the config names."""
    from steadyscale.providers.event_setup import EventSetup  # noqa: PLC0415

    region = config.provider.region
    sqs = emulator.client(region, service="sqs")
    bus = emulator.client(region, service="events")
    for step in EventSetup(config, sqs, bus).setup():
        log.debug("emulated events: %s", step.line())


def threaded_inbox(queue: SqsQueue, clock: Clock, metrics: Metrics, events: EventsConfig) -> Inbox:
    """A thread long-polling ``queue``; a failed receive is counted and logged."""

    def failed(exc: CloudError) -> None:
        metrics.events.receive_errors.inc()
        log.warning("event queue %s: %s; polling carries on meanwhile", queue.name, exc)

    return ThreadedInbox(
        queue,
        clock,
        max_messages=events.max_messages,
        wait_seconds=events.wait_seconds,
        capacity=events.max_events_per_tick,
        on_error=failed,
    ).start()
