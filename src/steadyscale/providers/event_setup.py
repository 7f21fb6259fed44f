"""`steadyscale events setup` and `teardown` on boto3: the queue, its policy, the rules and
their targets made (or removed) idempotently, each step saying what it found and did.
Works against AWS and against any endpoint (the emulator serves SQS and EventBridge on
its EC2 endpoint)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from steadyscale.config import ClusterConfig
from steadyscale.providers.aws import translate
from steadyscale.providers.boto import new_client
from steadyscale.providers.event_rules import (
    RULES,
    TARGET_ID,
    RuleSpec,
    events_of,
    queue_name,
    queue_policy,
    rule_prefix,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One thing setup or teardown looked at: what, its name, and what became of it
    (``created``, ``updated``, ``exists``, ``deleted``, ``absent``, ``kept``)."""

    kind: str
    name: str
    outcome: str
    detail: str = ""

    def line(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind} {self.name}: {self.outcome}{tail}"


def _call(fn: Callable[..., T], **kwargs: Any) -> T:
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class EventSetup:
    """The queue and rules of one cluster config, through SQS and EventBridge clients."""

    def __init__(self, config: ClusterConfig, sqs: Any, events: Any) -> None:
        self.events_config = events_of(config)
        self.region = config.provider.region
        self.queue = queue_name(self.events_config)
        self.prefix = rule_prefix(config.cluster_name)
        self._sqs = sqs
        self._events = events

    def _queue_url(self) -> str | None:
        try:
            return str(self._sqs.get_queue_url(QueueName=self.queue)["QueueUrl"])
        except ClientError as exc:
            if "NonExistent" in _code(exc):
                return None
            raise translate(exc) from None
        except BotoCoreError as exc:
            raise translate(exc) from None

    def _rule(self, name: str) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = self._events.describe_rule(Name=name)
            return answer
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise translate(exc) from None
        except BotoCoreError as exc:
            raise translate(exc) from None

    # ---------------------------------------------------------------- setup

    def setup(self) -> list[Step]:
        """Make what is missing, fix what differs, leave the rest; say each."""
        steps: list[Step] = []
        url = self._queue_url()
        if url is None:
            url = str(_call(self._sqs.create_queue, QueueName=self.queue)["QueueUrl"])
            steps.append(Step("queue", self.queue, "created", url))
        else:
            steps.append(Step("queue", self.queue, "exists", url))
        attributes = _call(
            self._sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn", "Policy"]
        )["Attributes"]
        arn = str(attributes["QueueArn"])
        rule_arns = [self._put_rule(spec, steps) for spec in RULES]
        steps.append(self._put_policy(url, arn, rule_arns, attributes.get("Policy")))
        for spec in RULES:
            steps.append(self._put_target(f"{self.prefix}-{spec.suffix}", arn))
        return steps

    def _put_rule(self, spec: RuleSpec, steps: list[Step]) -> str:
        name = f"{self.prefix}-{spec.suffix}"
        pattern = spec.pattern_json()
        found = self._rule(name)
        same = (
            found is not None
            and found.get("State") == "ENABLED"
            and json.loads(found.get("EventPattern") or "{}") == json.loads(pattern)
        )
        if same and found is not None:
            steps.append(Step("rule", name, "exists"))
            return str(found["Arn"])
        answer = _call(
            self._events.put_rule,
            Name=name,
            EventPattern=pattern,
            State="ENABLED",
            Description=spec.description,
        )
        steps.append(Step("rule", name, "created" if found is None else "updated"))
        return str(answer["RuleArn"])

    def _put_policy(self, url: str, arn: str, rule_arns: list[str], current: Any) -> Step:
        wanted = queue_policy(arn, rule_arns)
        detail = f"events.amazonaws.com may send from {len(rule_arns)} rules"
        if current and json.loads(str(current)) == wanted:
            return Step("queue policy", self.queue, "exists", detail)
        _call(
            self._sqs.set_queue_attributes,
            QueueUrl=url,
            Attributes={"Policy": json.dumps(wanted)},
        )
        return Step("queue policy", self.queue, "updated" if current else "created", detail)

    def _put_target(self, rule: str, arn: str) -> Step:
        targets = _call(self._events.list_targets_by_rule, Rule=rule).get("Targets", [])
        if any(t.get("Id") == TARGET_ID and t.get("Arn") == arn for t in targets):
            return Step("target", rule, "exists", f"-> {self.queue}")
        _call(self._events.put_targets, Rule=rule, Targets=[{"Id": TARGET_ID, "Arn": arn}])
        outcome = "updated" if any(t.get("Id") == TARGET_ID for t in targets) else "created"
        return Step("target", rule, outcome, f"-> {self.queue}")

    # ---------------------------------------------------------------- teardown

    def teardown(self, *, keep_queue: bool = False) -> list[Step]:
        """Remove the rules (with their targets) and the queue; say what was there."""
        steps: list[Step] = []
        for spec in RULES:
            name = f"{self.prefix}-{spec.suffix}"
            if self._rule(name) is None:
                steps.append(Step("rule", name, "absent"))
                continue
            targets = _call(self._events.list_targets_by_rule, Rule=name).get("Targets", [])
            if targets:
                ids = [str(t["Id"]) for t in targets]
                _call(self._events.remove_targets, Rule=name, Ids=ids)
            _call(self._events.delete_rule, Name=name)
            steps.append(Step("rule", name, "deleted"))
        url = self._queue_url()
        if url is None:
            steps.append(Step("queue", self.queue, "absent"))
        elif keep_queue:
            steps.append(Step("queue", self.queue, "kept", url))
        else:
            _call(self._sqs.delete_queue, QueueUrl=url)
            steps.append(Step("queue", self.queue, "deleted", url))
        return steps


def event_clients(config: ClusterConfig) -> tuple[Any, Any]:
    """SQS and EventBridge clients at the provider's region and endpoint (the default
    credentials chain, as the EC2 provider's)."""
    boto_config = Config(
        retries={"mode": "standard", "total_max_attempts": 3}, user_agent_extra="steadyscale"
    )
    sqs, bus = (
        new_client(
            service,
            region=config.provider.region,
            endpoint_url=config.provider.endpoint_url,
            config=boto_config,
        )
        for service in ("sqs", "events")
    )
    return sqs, bus
