"""EC2's events as AWS documents them (EventBridge's envelope and each type's ``detail``),
built for tests that put them on a queue, at a time of the test's clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(
    detail_type: str, source: str, at: float, detail: dict[str, Any], resources: list[str]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": iso(at),
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def _arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"


def state_change(instance_id: str, state: str, at: float) -> dict[str, Any]:
    return _envelope(
        "EC2 Instance State-change Notification",
        "aws.ec2",
        at,
        {"instance-id": instance_id, "state": state},
        [_arn(instance_id)],
    )


def interruption_warning(instance_id: str, at: float) -> dict[str, Any]:
    return _envelope(
        "EC2 Spot Instance Interruption Warning",
        "aws.ec2",
        at,
        {"instance-id": instance_id, "instance-action": "terminate"},
        [_arn(instance_id)],
    )


def rebalance(instance_id: str, at: float) -> dict[str, Any]:
    return _envelope(
        "EC2 Instance Rebalance Recommendation",
        "aws.ec2",
        at,
        {"instance-id": instance_id},
        [_arn(instance_id)],
    )


def retirement(instance_id: str, at: float, start: float) -> dict[str, Any]:
    return _envelope(
        "AWS Health Event",
        "aws.health",
        at,
        {
            "eventArn": f"arn:aws:health:{REGION}::event/EC2/x/{uuid.uuid4()}",
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": "scheduledChange",
            "startTime": iso(start),
            "eventDescription": [{"language": "en_US", "latestDescription": "retiring"}],
            "affectedEntities": [{"entityValue": instance_id}],
        },
        [_arn(instance_id)],
    )


def body(event: dict[str, Any]) -> str:
    return json.dumps(event)
