"""The Ray provider's launches, journaled: each is written to the state file (ClientToken and
parameters) before RunInstances is sent, and one EC2 has not answered is sent again with
the same token at later updates, so EC2 launches it once. Stopped nodes are started again
first (``cache_stopped_nodes``); subnets from ``SubnetIds`` are tried in order.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from ray.autoscaler.node_launch_exception import NodeLaunchException
from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_REQUEST,
    TAG_RAY_NODE_KIND,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.core.instances import TAG_LEDGER, CloudInstance
from steadyscale.errors import (
    CapacityUnavailable,
    CloudError,
    CloudUnavailable,
    LaunchRejected,
    ProviderSetupError,
    Throttled,
)
from steadyscale.providers.protocol import FleetResult, LaunchResult, LaunchSpec
from steadyscale.providers.wire import merge_tags
from steadyscale.ray.book import from_aws_tags, kind_of, to_aws_tags
from steadyscale.ray.fleet import RayFleets, is_fleet_config, is_fleet_intent, send_fleet
from steadyscale.ray.journal import LaunchIntent
from steadyscale.ray.shared import Shared
from steadyscale.ray.unanswered import UNANSWERED
from steadyscale.retries.backoff import Backoff

log = logging.getLogger("steadyscale.ray")

# What Ray's create_node returns for each node: its id and the address from the answer.
Created = dict[str, Any]


def _created(instance: CloudInstance) -> Created:
    return {"InstanceId": instance.instance_id, "PrivateIpAddress": instance.private_ip}


def _spec_of(intent: LaunchIntent) -> LaunchSpec:
    return LaunchSpec(
        request_id=intent.request_id,
        client_token=intent.client_token,
        node_type=intent.node_type,
        count=intent.count,
        node_config=intent.node_config,
        subnet_id=intent.subnet_id,
    )


def _fail(exc: CloudError | ProviderSetupError | None) -> NoReturn:
    """Raise Ray's ``NodeLaunchException`` for a launch that failed (None: its deadline)."""
    if isinstance(exc, ProviderSetupError):
        code, message = "ProviderSetupError", str(exc)
    else:
        code = exc.code if exc is not None else "LaunchDeadline"
        message = exc.message if exc is not None else "no launch within the deadline"
    raise NodeLaunchException(category=code, description=message, src_exc_info=sys.exc_info())


@dataclass(frozen=True)
class _Plan:
    """One create_node's RunInstances parameters, before a subnet and a token are chosen."""

    config: dict[str, Any]
    subnets: list[str | None]
    aws_tags: dict[str, str]  # the instance tags as EC2 shows them
    node_type: str
    count: int

    def intent(self, request_id: str, subnet_index: int, now: float) -> LaunchIntent:
        return LaunchIntent(
            request_id=request_id,
            client_token=f"ray-{request_id}",
            node_type=self.node_type,
            count=self.count,
            node_config=self.config,
            subnet_id=self.subnets[subnet_index % len(self.subnets)],
            tags=self.aws_tags,
            created_at=now,
        )


class Launcher:
    """``create_node`` and the resending of launches EC2 has not answered."""

    def __init__(
        self,
        shared: Shared,
        *,
        rng: random.Random,
        tag_node: Callable[[str, dict[str, str]], None],
    ) -> None:
        self._shared = shared
        self._rng = rng
        self._tag_node = tag_node  # the provider's set_node_tags
        self._backoff = Backoff(base=0.5, cap=5.0)
        self._lock = threading.Lock()
        # Launches a create_node of this process is sending now: another thread's request,
        # not one to resend or count (Ray's launcher threads launch concurrently).
        self._launching: set[str] = set()
        self._fleets = RayFleets(shared)

    def _call(self, intent: LaunchIntent) -> LaunchResult | FleetResult:
        """An intent's launch: its CreateFleet if it is a fleet's, else its RunInstances."""
        if is_fleet_intent(intent):
            return send_fleet(self._shared, intent)
        return self._shared.cloud.launch(_spec_of(intent))

    def create(self, node_config: dict[str, Any], tags: dict[str, str], count: int) -> Created:
        created: Created = {}
        wanted = to_aws_tags(kind_of(tags))
        for intent, launched in self.resend():
            if {k: intent.tags.get(k) for k in wanted} != wanted:
                continue
            # A launch of this kind EC2 has not answered yet, or just answered: it counts
            # towards this one, so a lost answer is never launched again.
            created.update(launched if launched is not None else {})
            count -= len(launched) if launched is not None else intent.count
        if count > 0 and self._held(count, tags):
            return created
        if count > 0 and self._shared.settings.cache_stopped_nodes:
            reused = self._reuse_stopped(tags, count)
            created.update(reused)
            count -= len(reused)
        if count > 0:
            created.update(self._launch(node_config, tags, count))
        return created

    def _held(self, count: int, tags: Mapping[str, str]) -> bool:
        """A new state file that adopted a live cluster launches nothing for a while: EC2
        may still hide nodes the lost file launched, which Ray would otherwise get twice.
        Ray asks again at its next update. Not Ray's autoscaler v2 (its launches carry a
        launch request id): it keeps its requests in Ray's GCS and waits for their nodes
        itself, and would ask again only after its own timeout (10 minutes)."""
        wait = self._shared.adoption.wait(self._shared.clock.now())
        if wait <= 0 or TAG_RAY_LAUNCH_REQUEST in tags:
            return False
        log.info(
            "launch of %d %s nodes held for %.0f s more: the state file is new and EC2 may "
            "not list yet nodes the lost one launched",
            count,
            tags.get(TAG_RAY_USER_NODE_TYPE) or tags.get(TAG_RAY_NODE_KIND, "node"),
            wait,
        )
        return True

    def resend(self) -> list[tuple[LaunchIntent, Created | None]]:
        """Send again each launch EC2 has not answered, with its own token and parameters:
        EC2 answers with the instances it launched for it, or launches them now, once.
        Returns each intent with its nodes, or None while EC2 still does not answer."""
        out: list[tuple[LaunchIntent, Created | None]] = []
        intents = self._shared.state.intents()  # before the set: see _send for the order
        with self._lock:
            launching = set(self._launching)
        for intent in intents:
            if intent.request_id in launching:
                continue
            if (
                self._shared.clock.now() - intent.created_at
                > self._shared.settings.visibility_timeout_seconds
            ):
                # Its instances, if any, carry the cluster tag: the listing has them.
                log.warning(
                    "launch %s never answered; leaving it to the listing", intent.request_id
                )
                self._shared.state.forget_intents([intent.request_id])
                continue
            try:
                result = self._call(intent)
            except (CapacityUnavailable, LaunchRejected) as exc:
                log.warning("launch %s failed when sent again (%s)", intent.request_id, exc.code)
                self._shared.state.forget_intents([intent.request_id])
                out.append((intent, {}))
                continue
            except UNANSWERED as exc:
                log.info(
                    "launch %s still unanswered (%s)", intent.request_id, self._shared.reasons(exc)
                )
                out.append((intent, None))
                continue
            launched = self._record(result.instances, intent.tags)
            self._tag_fleet(intent, launched)
            self._shared.state.forget_intents([intent.request_id])
            log.info("launch %s answered: %s", intent.request_id, sorted(launched))
            out.append((intent, launched))
        return out

    def _reuse_stopped(self, tags: dict[str, str], count: int) -> Created:
        """Start stopped nodes of the same kind and launch config, as Ray's provider does.
        Nodes still stopping are left for a later launch rather than waited for."""
        wanted = kind_of(tags)
        try:
            stopped = self._shared.cloud.list_tagged(
                TAG_RAY_CLUSTER_NAME, self._shared.cluster_name, states=("stopped",)
            )
        except UNANSWERED as exc:
            log.info("no stopped nodes to reuse (%s)", self._shared.reasons(exc))
            return {}
        candidates = [i for i in stopped if all(i.tags.get(k) == v for k, v in wanted.items())][
            :count
        ]
        if not candidates:
            return {}
        try:
            answer = self._shared.cloud.change_state(
                "StartInstances", [i.instance_id for i in candidates]
            )
        except UNANSWERED as exc:
            log.info(
                "starting stopped nodes failed (%s); launching new ones", self._shared.reasons(exc)
            )
            return {}
        now = self._shared.clock.now()
        started: Created = {}
        for instance in candidates:
            if instance.instance_id not in answer.states:
                continue
            self._shared.book.restart(instance, now)
            self._shared.state.forget_terminations([instance.instance_id])
            started[instance.instance_id] = _created(instance)
        log.info("reusing stopped nodes %s", sorted(started))
        for node_id in started:
            self._tag_node(node_id, dict(tags))
        return started

    def _launch(self, node_config: dict[str, Any], tags: dict[str, str], count: int) -> Created:
        config = dict(node_config)
        subnets = list(config.pop("SubnetIds", None) or [None])
        aws_tags = {
            **to_aws_tags(tags),
            TAG_RAY_CLUSTER_NAME: self._shared.cluster_name,
            TAG_LEDGER: self._shared.state.ledger_id,
        }
        # The user's instance tags win over Ray's, as with Ray's own AWS provider.
        config["TagSpecifications"] = merge_tags(
            config.pop("TagSpecifications", None),
            aws_tags,
            resource_types=("instance",),
            precedence="theirs",
            new_specs_first=True,
        )
        node_type = tags.get(TAG_RAY_USER_NODE_TYPE) or tags.get(TAG_RAY_NODE_KIND, "node")
        if is_fleet_config(config):
            try:
                config, subnets = self._fleets.plan(config, node_type), [None]
            except CloudError as exc:
                _fail(exc)
        plan = _Plan(config, subnets, aws_tags, node_type, count)
        tried: list[str] = []
        try:
            result = self._send(plan, tried)
            launched = self._record(result.instances, aws_tags)
            self._tag_fleet(plan.intent(tried[-1], 0, 0.0), launched)
            self._shared.state.forget_intents(tried[-1:])
        finally:
            with self._lock:
                self._launching.difference_update(tried)
        if len(launched) < count:
            log.info(
                "EC2 launched %d of %d %s nodes; Ray will ask again",
                len(launched),
                count,
                node_type,
            )
        return launched

    def _send(self, plan: _Plan, tried: list[str]) -> LaunchResult | FleetResult:
        """RunInstances until EC2 answers: the same token while the answer may be lost (it
        may have launched), the next subnet with a new token when nothing was launched."""
        deadline = self._shared.clock.now() + self._shared.settings.launch_deadline_seconds
        request_id = uuid.uuid4().hex
        subnet_index = 0
        attempt = 0
        failure: CloudError | None = None
        while True:
            intent = plan.intent(request_id, subnet_index, self._shared.clock.now())
            # Marked as this thread's before it is written, so no other thread resends it;
            # written before sending, so later updates resend it if no answer comes.
            with self._lock:
                self._launching.add(request_id)
            tried.append(request_id)
            self._shared.state.add_intent(intent)
            try:
                return self._call(intent)
            except (CapacityUnavailable, LaunchRejected) as exc:
                # Nothing launched: the next subnet, with a new token (new parameters).
                self._shared.state.forget_intents([request_id])
                failure = exc
                subnet_index += 1
                request_id = uuid.uuid4().hex
                if subnet_index >= max(len(plan.subnets), self._shared.settings.max_attempts):
                    _fail(exc)
            except (Throttled, CloudUnavailable) as exc:
                # Maybe launched: the same token again, so EC2 returns the same instances.
                failure = exc
            except ProviderSetupError as exc:
                if not isinstance(failure, (Throttled, CloudUnavailable)):  # nothing ran
                    self._shared.state.forget_intents([request_id])
                self._shared.reasons(exc)
                _fail(exc)
            if self._shared.clock.now() >= deadline:
                # Maybe launched: the intent stays, and later updates resend it.
                log.warning(
                    "no answer to a launch of %d %s nodes within %.0f s; resending "
                    "it with the same token at the next update",
                    plan.count,
                    plan.node_type,
                    self._shared.settings.launch_deadline_seconds,
                )
                _fail(failure)
            self._shared.clock.sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1

    def _tag_fleet(self, intent: LaunchIntent, launched: Created) -> None:
        """A fleet tags its instances with steadyscale's tags at creation; Ray's follow by
        CreateTags (a fresh id EC2 does not know yet is tagged at a later flush)."""
        if is_fleet_intent(intent):
            for node_id in launched:
                self._tag_node(node_id, from_aws_tags(intent.tags))

    def _record(self, instances: Sequence[CloudInstance], aws_tags: Mapping[str, str]) -> Created:
        """Nodes from a RunInstances answer, in the book and the state file."""
        counted, new = self._shared.book.add_launched(instances, aws_tags, self._shared.clock.now())
        self._shared.state.add_launches(new)
        ids = set(counted)
        return {i.instance_id: _created(i) for i in instances if i.instance_id in ids}
