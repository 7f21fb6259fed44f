"""The default event bus of the emulated account, as AWS services' events reach it: each
event EC2 or AWS Health emits is matched against the enabled rules of the region's default
bus (moto's event patterns) and sent, whole and in AWS's shape, to each rule's SQS
targets (an input transformer, when a target has one, shapes it as moto does). Events no
rule matches go nowhere, as on AWS.

Called under the emulator's lock, like every other use of moto's backends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from moto.events.models import events_backends
from moto.events.utils import EventTemplateParser
from moto.sqs.exceptions import QueueDoesNotExist
from moto.sqs.models import sqs_backends

from steadyscale.ec2model.events import EmittedEvent

log = logging.getLogger("steadyscale.emulator")


def route(account_id: str, region: str, events: Iterable[EmittedEvent]) -> int:
    """Hand each event (a duplicate once per copy) to the targets of the rules it
    matches; returns how many messages were sent."""
    bus = events_backends[account_id][region].event_buses.get("default")
    if bus is None:
        return 0
    sent = 0
    for event in events:
        envelope: Any = event.envelope()  # moto's EventMessageType, a TypedDict
        for rule in list(bus.rules.values()):
            if rule.state != "ENABLED" or not rule.event_pattern.matches_event(envelope):
                continue
            for target in rule.targets:
                sent += _send(target, envelope)
    return sent


def _send(target: dict[str, Any], envelope: Any) -> int:
    parts = str(target.get("Arn", "")).split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        log.debug("event target %s is not an SQS queue: not delivered", target.get("Arn"))
        return 0
    _, _, _, region, account, queue_name = parts
    body: Any = envelope
    transformer = target.get("InputTransformer")
    if transformer:
        body = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=envelope,
        )
    try:
        sqs_backends[account][region].send_message(
            queue_name=queue_name,
            message_body=body if isinstance(body, str) else json.dumps(body),
            group_id=target.get("SqsParameters", {}).get("MessageGroupId"),
        )
    except QueueDoesNotExist:
        log.debug("event target queue %s does not exist: not delivered", queue_name)
        return 0
    return 1
