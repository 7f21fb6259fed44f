"""What `steadyscale events setup` makes, as data: the SQS queue EC2's events reach, the
EventBridge rules that send them there (state changes, spot interruption warnings,
rebalance recommendations, AWS Health's scheduled changes), and the queue policy that
lets EventBridge send on behalf of exactly those rules. The IAM policy reads the same
names, so what it allows is what setup makes and the daemon reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from steadyscale.config import ClusterConfig, EventsConfig

# EventBridge rule names: at most 64 of [.-_A-Za-z0-9].
_RULE_NAME_MAX = 64
# The id of the queue among a rule's targets.
TARGET_ID = "steadyscale-queue"


@dataclass(frozen=True)
class RuleSpec:
    suffix: str
    pattern: dict[str, Any]
    description: str

    def pattern_json(self) -> str:
        return json.dumps(self.pattern, sort_keys=True)


RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "state-change",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
        "EC2 instance state changes, for steadyscale",
    ),
    RuleSpec(
        "spot-interruption",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "EC2 spot interruption warnings, for steadyscale",
    ),
    RuleSpec(
        "rebalance",
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "EC2 rebalance recommendations, for steadyscale",
    ),
    RuleSpec(
        "scheduled-change",
        {
            "source": ["aws.health"],
            "detail-type": ["AWS Health Event"],
            "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
        },
        "AWS Health scheduled changes of EC2 (instance retirement), for steadyscale",
    ),
)


def rule_prefix(cluster_name: str) -> str:
    """``steadyscale-<cluster>``; shortened with a hash of the whole when the longest rule
    name would pass EventBridge's 64 characters."""
    prefix = f"steadyscale-{cluster_name}"
    longest = max(len(rule.suffix) for rule in RULES) + 1
    if len(prefix) + longest <= _RULE_NAME_MAX:
        return prefix
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:8]
    return f"{prefix[: _RULE_NAME_MAX - longest - 9]}-{digest}"


def rule_names(cluster_name: str) -> list[str]:
    prefix = rule_prefix(cluster_name)
    return [f"{prefix}-{rule.suffix}" for rule in RULES]


def events_of(config: ClusterConfig) -> EventsConfig:
    if config.events is None:
        raise ValueError("the config has no events block")
    return config.events


def queue_name(events: EventsConfig) -> str:
    """The queue's name: as given, or the last part of its URL."""
    if events.queue_name is not None:
        return events.queue_name
    return str(events.queue_url).rstrip("/").rsplit("/", 1)[-1]


def queue_account(events: EventsConfig) -> str:
    """The account a queue URL names (``*`` when only a name is given)."""
    if events.queue_url is None:
        return "*"
    parts = events.queue_url.rstrip("/").rsplit("/", 2)
    return parts[-2] if len(parts) == 3 and parts[-2].isdigit() else "*"


def queue_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def rule_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def queue_policy(queue: str, rules: list[str]) -> dict[str, Any]:
    """The queue policy EventBridge needs: events.amazonaws.com may send to the queue,
    only on behalf of these rules (by ARN)."""
    return {
        "Version": "2012-10-17",
        "Id": "steadyscale-events",
        "Statement": [
            {
                "Sid": "EventBridgeSendsEC2Events",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rules)}},
            }
        ],
    }
