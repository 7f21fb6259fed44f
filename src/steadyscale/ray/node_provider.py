"""Ray's ``NodeProvider`` on steadyscale's EC2 layer: a drop-in for ``provider: type: aws``.

Ray's autoscaler asks about nodes by id right after creating them; EC2 may not show them
for seconds to minutes. This provider answers from what it knows: the RunInstances
response (id, private IP, tags) until a listing shows the node, tags it set until EC2
takes them, and termination it asked for until EC2 confirms. A node missing from one
listing is looked up by id before it is dropped; nothing here raises because EC2 is late.
"""

from __future__ import annotations

import copy
import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray.autoscaler.node_launch_exception import NodeLaunchException
from ray.autoscaler.node_provider import NodeProvider
from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_CONFIG,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.config import DEFAULT_RATE_LIMITS, describe_validation_error
from steadyscale.core.instances import CloudInstance
from steadyscale.errors import (
    CapacityUnavailable,
    CloudError,
    CloudUnavailable,
    ConfigError,
    LaunchRejected,
    ProviderSetupError,
    Throttled,
)
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.protocol import LaunchSpec
from steadyscale.providers.wire import merge_tags
from steadyscale.ray.journal import LaunchIntent, PendingLaunch, PendingTermination, StateFile
from steadyscale.retries.backoff import Backoff
from steadyscale.retries.clock import Clock, ScaledClock, WallClock

log = logging.getLogger("steadyscale.ray")

LIVE_STATES = ("pending", "running")
# A call that failed this way is answered from what the provider knows: EC2 errors, and
# credentials EC2 refuses (which may be fixed, or rotate back, while Ray keeps running).
UNANSWERED = (CloudError, ProviderSetupError)
TERMINATE = "TerminateInstances"
STOP = "StopInstances"


class RayProviderSettings(BaseModel):
    """The ``provider`` section. Ray's AWS keys are accepted as they are (extra keys pass);
    the ones below are read, with Ray's defaults where Ray has the key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    region: str = Field(min_length=1)
    cache_stopped_nodes: bool = True
    aws_credentials: dict[str, str] | None = None
    # steadyscale's own keys.
    endpoint_url: str | None = None
    state_path: str | None = None
    time_scale: float = Field(default=1.0, gt=0)
    lookup_deadline_seconds: float = Field(default=5.0, ge=0)
    visibility_timeout_seconds: float = Field(default=600.0, gt=0)
    launch_deadline_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)


def parse_settings(provider_config: Mapping[str, Any]) -> RayProviderSettings:
    try:
        return RayProviderSettings.model_validate(dict(provider_config))
    except ValidationError as exc:
        message = describe_validation_error(exc)
        raise ConfigError(f"provider.{message}; see docs/ray.md for the keys") from None


def default_state_path(cluster_name: str, region: str) -> Path:
    return Path.home() / ".steadyscale" / "ray" / f"{cluster_name}-{region}.sqlite"


def to_aws_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Ray keeps a node's name in ``ray-node-name``; EC2 shows it as ``Name``."""
    out = {k: v for k, v in tags.items() if k != TAG_RAY_NODE_NAME}
    if TAG_RAY_NODE_NAME in tags:
        out["Name"] = tags[TAG_RAY_NODE_NAME]
    return out


def from_aws_tags(tags: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in tags.items() if k != "Name"}
    if "Name" in tags:
        out[TAG_RAY_NODE_NAME] = tags["Name"]
    return out


def _spec_of(intent: LaunchIntent) -> LaunchSpec:
    return LaunchSpec(
        request_id=intent.request_id,
        client_token=intent.client_token,
        node_type=intent.node_type,
        count=intent.count,
        node_config=intent.node_config,
        subnet_id=intent.subnet_id,
    )


def _kind_of(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags that say which nodes are interchangeable: kind, node type, launch config."""
    return {
        k: tags[k]
        for k in (TAG_RAY_NODE_KIND, TAG_RAY_LAUNCH_CONFIG, TAG_RAY_USER_NODE_TYPE)
        if k in tags
    }


def lifecycle_of(instance: CloudInstance) -> str:
    """EC2 names only the spot lifecycle; an instance it shows without one is on-demand."""
    return instance.lifecycle or "on-demand"


def with_ray_aws_defaults(cluster_config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with what Ray's ``aws/defaults.yaml`` gives a ``type: aws`` YAML.

    For ``type: external`` Ray fills missing keys from a minimal config instead, which
    leaves no commands to start Ray, no ``auth.ssh_user`` and no node configs. Keys that
    are missing or None (and an empty ``auth``) take the installed Ray's AWS defaults, and
    so do node types of the default names without a ``node_config``, except ``resources``:
    those are looked up for the instance type, as Ray's AWS provider does.
    """
    from ray.autoscaler._private.providers import _get_default_config  # noqa: PLC0415

    defaults = _get_default_config({"type": "aws"})
    config = copy.deepcopy(dict(cluster_config))
    for key, value in defaults.items():
        if key == "provider":
            continue
        if config.get(key) is None or (key == "auth" and not config[key]):
            config[key] = value
    default_types = defaults.get("available_node_types", {})
    for name, node_type in (config.get("available_node_types") or {}).items():
        default_type = default_types.get(name)
        if default_type is None or node_type.get("node_config") is not None:
            continue
        for key, value in default_type.items():
            if key != "resources":
                node_type.setdefault(key, copy.deepcopy(value))
    return config


@dataclass
class _Node:
    instance_id: str
    state: str
    private_ip: str | None
    tags: dict[str, str]  # in Ray's form
    public_ip: str | None = None
    # "spot" or "on-demand" as EC2 reported it; None when unknown, and then a scale-down
    # terminates (EC2 refuses to stop a one-time spot instance).
    lifecycle: str | None = None
    seen_at: float | None = None  # last time a listing or lookup showed it
    known_since: float = 0.0

    def absorb(self, shown: CloudInstance, now: float) -> None:
        self.state = shown.state
        self.private_ip = shown.private_ip or self.private_ip
        self.public_ip = shown.public_ip or self.public_ip
        self.lifecycle = lifecycle_of(shown)
        self.seen_at = now


@dataclass
class _Book:
    """Everything the provider knows, guarded by one lock; EC2 calls happen outside it."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    tags_set: dict[str, dict[str, str]] = field(default_factory=dict)  # kept over listings
    unsent_tags: dict[str, dict[str, str]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # terminated or stopped by us


class EC2NodeProvider(NodeProvider):  # type: ignore[misc]  # Ray is untyped for mypy here
    """``provider: {type: external, module: steadyscale.ray.EC2NodeProvider, region: ...}``."""

    max_terminate_nodes = 1000

    def __init__(
        self,
        provider_config: dict[str, Any],
        cluster_name: str,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Ray passes the two arguments; ``clock`` and ``rng`` (backoff jitter) are for
        tests on a fake clock."""
        super().__init__(provider_config, cluster_name)
        self.settings = parse_settings(provider_config)
        self.cache_stopped_nodes = self.settings.cache_stopped_nodes
        if clock is None:
            clock = (
                WallClock()
                if self.settings.time_scale == 1.0
                else ScaledClock(self.settings.time_scale, origin=time.time())
            )
        self.clock = clock
        self.ec2 = EC2Provider(
            cluster_name=cluster_name,
            region=self.settings.region,
            clock=self.clock,
            endpoint_url=self.settings.endpoint_url,
            max_attempts=self.settings.max_attempts,
            lookup_deadline=self.settings.lookup_deadline_seconds,
            credentials=self.settings.aws_credentials,
            rate_limits={
                name: (limit.capacity, limit.refill_per_second)
                for name, limit in DEFAULT_RATE_LIMITS.items()
            },
        )
        path = self.settings.state_path or default_state_path(cluster_name, self.settings.region)
        self.state = StateFile(path)
        self._lock = threading.RLock()
        self._book = _Book()
        self._backoff = Backoff(base=0.5, cap=5.0)
        self._rng = rng if rng is not None else random.Random()
        self._setup_errors_logged: set[str] = set()
        # Launches a create_node of this process is sending now: another thread's request,
        # not one to resend or count (Ray's launcher threads launch concurrently).
        self._launching: set[str] = set()
        for launch in self.state.launches():
            self._book.nodes[launch.instance_id] = _Node(
                instance_id=launch.instance_id,
                state="pending",
                private_ip=launch.private_ip,
                tags=dict(launch.tags),
                known_since=launch.launched_at,
                lifecycle=launch.lifecycle,
            )
        self._book.gone.update(t.instance_id for t in self.state.terminations())

    # ------------------------------------------------------------------ listing

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        self._retry_pending_work()
        try:
            listed = self.ec2.list_tagged(
                TAG_RAY_CLUSTER_NAME, self.cluster_name, states=LIVE_STATES
            )
        except UNANSWERED as exc:
            # Answer from what we know; the next update lists again.
            log.warning("listing failed (%s); answering from the last listing", self._reason(exc))
            listed = None
        if listed is not None:
            self._absorb_listing(listed)
        with self._lock:
            return [
                node_id
                for node_id, node in self._book.nodes.items()
                if all(node.tags.get(k) == v for k, v in tag_filters.items())
            ]

    def _absorb_listing(self, listed: list[CloudInstance]) -> None:
        now = self.clock.now()
        with self._lock:
            shown = {i.instance_id: i for i in listed if i.instance_id not in self._book.gone}
            for instance in shown.values():
                self._remember(instance, now)
            missing = [i for i in self._book.nodes if i not in shown]
        self.state.forget_launches(list(shown))
        if missing:
            self._recheck(missing, now)

    def _remember(self, instance: CloudInstance, now: float) -> _Node:
        """Record what EC2 showed; tags this provider set stay over older ones shown."""
        node = self._book.nodes.get(instance.instance_id)
        tags = from_aws_tags(instance.tags)
        tags.update(self._book.tags_set.get(instance.instance_id, {}))
        if node is None:
            node = _Node(
                instance_id=instance.instance_id,
                state=instance.state,
                private_ip=instance.private_ip,
                tags=tags,
                known_since=now,
            )
            self._book.nodes[instance.instance_id] = node
        else:
            node.tags = {**node.tags, **tags}
        node.absorb(instance, now)
        return node

    def _recheck(self, missing: list[str], now: float) -> None:
        """Nodes a listing omitted: not visible yet, a listing that flickers, or gone.
        One lookup by id tells which; only EC2 saying so, or a long silence, drops one."""
        try:
            shown = {i.instance_id: i for i in self.ec2.describe_by_id(missing)}
        except UNANSWERED as exc:
            log.warning("lookup of %d unlisted nodes failed (%s)", len(missing), self._reason(exc))
            return
        dropped: list[str] = []
        with self._lock:
            for instance_id in missing:
                node = self._book.nodes.get(instance_id)
                if node is None:
                    continue
                instance = shown.get(instance_id)
                if instance is not None:
                    node.absorb(instance, now)
                    if instance.state not in LIVE_STATES:
                        dropped.append(instance_id)
                    continue
                last = node.seen_at if node.seen_at is not None else node.known_since
                if now - last > self.settings.visibility_timeout_seconds:
                    log.warning(
                        "%s: not shown by EC2 for %.0f s; dropping it", instance_id, now - last
                    )
                    dropped.append(instance_id)
            for instance_id in dropped:
                del self._book.nodes[instance_id]
        if dropped:
            self.state.forget_launches(dropped)

    def _node(self, node_id: str) -> _Node | None:
        """The node as known, else one lookup by id (no waiting): None if EC2 has nothing."""
        with self._lock:
            node = self._book.nodes.get(node_id)
        if node is not None:
            return node
        try:
            shown = self.ec2.describe_by_id([node_id])
        except UNANSWERED as exc:
            self._reason(exc)
            return None
        if not shown:
            return None
        with self._lock:
            if shown[0].tags.get(TAG_RAY_CLUSTER_NAME) == self.cluster_name and (
                shown[0].state in LIVE_STATES and node_id not in self._book.gone
            ):
                return self._remember(shown[0], self.clock.now())
            tags = from_aws_tags(shown[0].tags)
            node = _Node(
                instance_id=node_id, state=shown[0].state, private_ip=shown[0].private_ip, tags=tags
            )
            node.absorb(shown[0], self.clock.now())
            return node

    def is_running(self, node_id: str) -> bool:
        node = self._node(node_id)
        return node is not None and node.state == "running"

    def is_terminated(self, node_id: str) -> bool:
        with self._lock:
            if node_id in self._book.gone:
                return True
        node = self._node(node_id)
        # Not shown is not gone: only a state EC2 reports ends a node.
        return node is not None and node.state not in LIVE_STATES

    def node_tags(self, node_id: str) -> dict[str, str]:
        node = self._node(node_id)
        return dict(node.tags) if node is not None else {}

    def internal_ip(self, node_id: str) -> str:
        node = self._node(node_id)
        return (node.private_ip or "") if node is not None else ""

    def external_ip(self, node_id: str) -> str | None:
        node = self._node(node_id)
        if node is not None and node.public_ip is None:
            try:
                shown = self.ec2.describe_by_id([node_id])
            except UNANSWERED as exc:
                self._reason(exc)
                shown = []
            if shown:
                with self._lock:
                    node.public_ip = shown[0].public_ip
        return node.public_ip if node is not None else None

    # ------------------------------------------------------------------ tags

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        with self._lock:
            self._book.tags_set.setdefault(node_id, {}).update(tags)
            self._book.unsent_tags.setdefault(node_id, {}).update(tags)
            node = self._book.nodes.get(node_id)
            if node is not None:
                node.tags.update(tags)
        self._flush_tags()

    def _flush_tags(self) -> None:
        """One CreateTags per set of identical tags; what EC2 does not take yet (a fresh id,
        throttling) waits for the next flush, which every listing triggers."""
        with self._lock:
            unsent, self._book.unsent_tags = self._book.unsent_tags, {}
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for node_id, tags in unsent.items():
            groups.setdefault(tuple(sorted(tags.items())), []).append(node_id)
        retry: list[str] = []
        for pairs, node_ids in groups.items():
            try:
                retry.extend(self.ec2.create_tags(node_ids, to_aws_tags(dict(pairs))))
            except UNANSWERED as exc:
                log.info("CreateTags on %d nodes deferred (%s)", len(node_ids), self._reason(exc))
                retry.extend(node_ids)
        if retry:
            with self._lock:
                for node_id in retry:
                    if node_id in self._book.gone:
                        continue
                    later = self._book.unsent_tags.setdefault(node_id, {})
                    self._book.unsent_tags[node_id] = {**unsent[node_id], **later}

    # ------------------------------------------------------------------ launch

    def create_node(
        self, node_config: dict[str, Any], tags: dict[str, str], count: int
    ) -> dict[str, Any]:
        created: dict[str, Any] = {}
        wanted = to_aws_tags(_kind_of(tags))
        for intent, launched in self._resend_intents():
            if {k: intent.tags.get(k) for k in wanted} != wanted:
                continue
            # A launch of this kind EC2 has not answered yet, or just answered: it counts
            # towards this one, so a lost answer is never launched again.
            created.update(launched if launched is not None else {})
            count -= len(launched) if launched is not None else intent.count
        if count > 0 and self.cache_stopped_nodes:
            reused = self._reuse_stopped(tags, count)
            created.update(reused)
            count -= len(reused)
        if count > 0:
            created.update(self._launch(node_config, tags, count))
        return created

    def create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, float],
        labels: dict[str, str],
    ) -> dict[str, Any]:
        return self.create_node(node_config, tags, count)

    def _reuse_stopped(self, tags: dict[str, str], count: int) -> dict[str, Any]:
        """Start stopped nodes of the same kind and launch config, as Ray's provider does.
        Nodes still stopping are left for a later launch rather than waited for."""
        wanted = _kind_of(tags)
        try:
            stopped = self.ec2.list_tagged(
                TAG_RAY_CLUSTER_NAME, self.cluster_name, states=("stopped",)
            )
        except UNANSWERED as exc:
            log.info("no stopped nodes to reuse (%s)", self._reason(exc))
            return {}
        candidates = [i for i in stopped if all(i.tags.get(k) == v for k, v in wanted.items())][
            :count
        ]
        if not candidates:
            return {}
        try:
            answer = self.ec2.change_state("StartInstances", [i.instance_id for i in candidates])
        except UNANSWERED as exc:
            log.info("starting stopped nodes failed (%s); launching new ones", self._reason(exc))
            return {}
        now = self.clock.now()
        started: dict[str, Any] = {}
        for instance in candidates:
            if instance.instance_id not in answer.states:
                continue
            with self._lock:
                self._book.gone.discard(instance.instance_id)
                node = self._remember(instance, now)
                node.state = "pending"
            self.state.forget_terminations([instance.instance_id])
            started[instance.instance_id] = {
                "InstanceId": instance.instance_id,
                "PrivateIpAddress": instance.private_ip,
            }
        log.info("reusing stopped nodes %s", sorted(started))
        for node_id in started:
            self.set_node_tags(node_id, dict(tags))
        return started

    def _launch(
        self, node_config: dict[str, Any], tags: dict[str, str], count: int
    ) -> dict[str, Any]:
        config = dict(node_config)
        subnets = list(config.pop("SubnetIds", None) or [None])
        aws_tags = {**to_aws_tags(tags), TAG_RAY_CLUSTER_NAME: self.cluster_name}
        # The user's instance tags win over Ray's, as with Ray's own AWS provider.
        config["TagSpecifications"] = merge_tags(
            config.pop("TagSpecifications", None),
            aws_tags,
            resource_types=("instance",),
            precedence="theirs",
            new_specs_first=True,
        )
        node_type = tags.get(TAG_RAY_USER_NODE_TYPE) or tags.get(TAG_RAY_NODE_KIND, "node")
        deadline = self.clock.now() + self.settings.launch_deadline_seconds
        request_id = uuid.uuid4().hex
        subnet_index = 0
        attempt = 0
        failure: CloudError | None = None
        tried: list[str] = []
        try:
            while True:
                subnet = subnets[subnet_index % len(subnets)]
                intent = LaunchIntent(
                    request_id=request_id,
                    client_token=f"ray-{request_id}",
                    node_type=node_type,
                    count=count,
                    node_config=config,
                    subnet_id=subnet,
                    tags=aws_tags,
                    created_at=self.clock.now(),
                )
                # Marked as this thread's before it is written, so no other thread resends
                # it; written before sending, so later updates resend it if no answer comes.
                with self._lock:
                    self._launching.add(request_id)
                tried.append(request_id)
                self.state.add_intent(intent)
                try:
                    result = self.ec2.launch(_spec_of(intent))
                    break
                except (CapacityUnavailable, LaunchRejected) as exc:
                    # Nothing launched: the next subnet, with a new token (new parameters).
                    self.state.forget_intents([request_id])
                    failure = exc
                    subnet_index += 1
                    request_id = uuid.uuid4().hex
                    if subnet_index >= max(len(subnets), self.settings.max_attempts):
                        self._fail(exc)
                except (Throttled, CloudUnavailable) as exc:
                    # Maybe launched: the same token again, so EC2 returns the same instances.
                    failure = exc
                except ProviderSetupError as exc:
                    if not isinstance(failure, (Throttled, CloudUnavailable)):  # nothing ran
                        self.state.forget_intents([request_id])
                    self._reason(exc)
                    self._fail(exc)
                if self.clock.now() >= deadline:
                    # Maybe launched: the intent stays, and later updates resend it.
                    log.warning(
                        "no answer to a launch of %d %s nodes within %.0f s; resending "
                        "it with the same token at the next update",
                        count,
                        node_type,
                        self.settings.launch_deadline_seconds,
                    )
                    self._fail(failure)
                self.clock.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
            launched = self._record_launch(result.instances, aws_tags)
            self.state.forget_intents([request_id])
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

    def _resend_intents(self) -> list[tuple[LaunchIntent, dict[str, Any] | None]]:
        """Send again each launch EC2 has not answered, with its own token and parameters:
        EC2 answers with the instances it launched for it, or launches them now, once.
        Returns each intent with its nodes, or None while EC2 still does not answer."""
        out: list[tuple[LaunchIntent, dict[str, Any] | None]] = []
        intents = self.state.intents()  # before the set: see _launch for the order
        with self._lock:
            launching = set(self._launching)
        for intent in intents:
            if intent.request_id in launching:
                continue
            if self.clock.now() - intent.created_at > self.settings.visibility_timeout_seconds:
                # Its instances, if any, carry the cluster tag: the listing has them.
                log.warning(
                    "launch %s never answered; leaving it to the listing", intent.request_id
                )
                self.state.forget_intents([intent.request_id])
                continue
            try:
                result = self.ec2.launch(_spec_of(intent))
            except (CapacityUnavailable, LaunchRejected) as exc:
                log.warning("launch %s failed when sent again (%s)", intent.request_id, exc.code)
                self.state.forget_intents([intent.request_id])
                out.append((intent, {}))
                continue
            except UNANSWERED as exc:
                log.info("launch %s still unanswered (%s)", intent.request_id, self._reason(exc))
                out.append((intent, None))
                continue
            launched = self._record_launch(result.instances, intent.tags)
            self.state.forget_intents([intent.request_id])
            log.info("launch %s answered: %s", intent.request_id, sorted(launched))
            out.append((intent, launched))
        return out

    def _record_launch(
        self, instances: tuple[CloudInstance, ...], aws_tags: Mapping[str, str]
    ) -> dict[str, Any]:
        """Nodes from a RunInstances answer, in the book and the state file."""
        now = self.clock.now()
        launched: dict[str, Any] = {}
        pending: list[PendingLaunch] = []
        with self._lock:
            for instance in instances:
                if instance.instance_id in self._book.gone:
                    continue  # an answer repeated after Ray terminated the node
                if instance.instance_id in self._book.nodes:  # a listing showed it first
                    launched[instance.instance_id] = {
                        "InstanceId": instance.instance_id,
                        "PrivateIpAddress": instance.private_ip,
                    }
                    continue
                node_tags = from_aws_tags({**instance.tags, **aws_tags})
                node = _Node(
                    instance_id=instance.instance_id,
                    state="pending",
                    private_ip=instance.private_ip,
                    tags=node_tags,
                    known_since=now,
                    lifecycle=lifecycle_of(instance),
                )
                self._book.nodes[instance.instance_id] = node
                pending.append(
                    PendingLaunch(
                        instance_id=instance.instance_id,
                        tags=node_tags,
                        private_ip=instance.private_ip,
                        launched_at=now,
                        lifecycle=node.lifecycle,
                    )
                )
                launched[instance.instance_id] = {
                    "InstanceId": instance.instance_id,
                    "PrivateIpAddress": instance.private_ip,
                }
        self.state.add_launches(pending)
        return launched

    def _reason(self, exc: CloudError | ProviderSetupError) -> str:
        """A failed call's reason for a log line. Refused credentials are logged once
        per kind as a warning: Ray keeps asking, and the answers come from the book."""
        if isinstance(exc, CloudError):
            return exc.code
        message = str(exc)
        if message not in self._setup_errors_logged:
            self._setup_errors_logged.add(message)
            log.warning("EC2 cannot be used: %s; answering from what is known", message)
        return "ProviderSetupError"

    @staticmethod
    def _fail(exc: CloudError | ProviderSetupError | None) -> None:
        if isinstance(exc, ProviderSetupError):
            code, message = "ProviderSetupError", str(exc)
        else:
            code = exc.code if exc is not None else "LaunchDeadline"
            message = exc.message if exc is not None else "no launch within the deadline"
        raise NodeLaunchException(category=code, description=message, src_exc_info=sys.exc_info())

    # ------------------------------------------------------------------ terminate

    def terminate_node(self, node_id: str) -> None:
        self.terminate_nodes([node_id])

    def terminate_nodes(self, node_ids: list[str]) -> None:
        if not node_ids:
            return
        now = self.clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        taken: dict[str, _Node] = {}
        with self._lock:
            for node_id in dict.fromkeys(node_ids):
                node = self._book.nodes.pop(node_id, None)
                if node is not None:
                    taken[node_id] = node
                # Stop only what is known to be on-demand: stopping a spot instance fails.
                stop = (
                    self.cache_stopped_nodes and node is not None and node.lifecycle == "on-demand"
                )
                actions[STOP if stop else TERMINATE].append(node_id)
                self._book.gone.add(node_id)
                self._book.unsent_tags.pop(node_id, None)
        everything = [i for ids in actions.values() for i in ids]
        self.state.forget_launches(everything)
        self.state.add_terminations(
            [
                PendingTermination(instance_id=i, action=a, since=now)
                for a, ids in actions.items()
                for i in ids
            ]
        )
        self._send_terminations(actions, taken)

    def _send_terminations(
        self, actions: Mapping[str, list[str]], taken: Mapping[str, _Node] | None = None
    ) -> None:
        """Send each action; ids EC2 accepted leave the retry list, the rest stay on it
        (a NotFound on a fresh id means the instance will still run). An id EC2 refused
        (termination protection) still runs: it is no longer "gone", so Ray keeps seeing
        it, with the node it was (``taken``) or from the next listing."""
        for action, ids in actions.items():
            if not ids:
                continue
            try:
                if action == TERMINATE:
                    result = self.ec2.terminate(ids)
                else:
                    result = self.ec2.change_state(STOP, ids)
            except LaunchRejected as exc:
                if action != STOP:
                    log.info("%s on %d nodes deferred (%s)", action, len(ids), exc.code)
                    continue
                # EC2 will not stop them (a spot instance, an instance-store root):
                # terminate them instead, as Ray's provider does for spot nodes.
                log.warning(
                    "StopInstances refused (%s); terminating %s instead", exc.code, sorted(ids)
                )
                self._send_terminations({TERMINATE: ids}, taken)
                continue
            except UNANSWERED as exc:
                log.info("%s on %d nodes deferred (%s)", action, len(ids), self._reason(exc))
                continue
            self.state.forget_terminations(list(result.states))
            for node_id, reason in result.refused.items():
                log.warning("%s refused for %s: %s; the node stays", action, node_id, reason)
            self._restore(list(result.refused), taken or {})

    def _restore(self, node_ids: list[str], taken: Mapping[str, _Node]) -> None:
        """Nodes a refused termination leaves running go back in the book."""
        if not node_ids:
            return
        restored: list[PendingLaunch] = []
        with self._lock:
            for node_id in node_ids:
                self._book.gone.discard(node_id)
                node = taken.get(node_id)
                if node is not None:
                    self._book.nodes.setdefault(node_id, node)
                    if node.seen_at is None:  # not listed yet: the file keeps it too
                        restored.append(
                            PendingLaunch(
                                instance_id=node_id,
                                tags=dict(node.tags),
                                private_ip=node.private_ip,
                                launched_at=node.known_since,
                                lifecycle=node.lifecycle,
                            )
                        )
        self.state.forget_terminations(node_ids)
        self.state.add_launches(restored)

    def _retry_pending_work(self) -> None:
        self._resend_intents()
        now = self.clock.now()
        actions: dict[str, list[str]] = {TERMINATE: [], STOP: []}
        expired: list[str] = []
        for pending in self.state.terminations():
            if now - pending.since > self.settings.visibility_timeout_seconds:
                log.warning(
                    "%s: EC2 never accepted %s; giving up", pending.instance_id, pending.action
                )
                expired.append(pending.instance_id)
            else:
                actions.setdefault(pending.action, []).append(pending.instance_id)
        self.state.forget_terminations(expired)
        self._send_terminations(actions)
        self._flush_tags()

    # ------------------------------------------------------------------ config

    @staticmethod
    def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
        """Ray's AWS defaults for what the YAML leaves out, then Ray's AWS setup (IAM role,
        key pair, subnets, security group) on real AWS; against an ``endpoint_url`` (the
        emulator) the setup is skipped."""
        provider = cluster_config.get("provider", {})
        parse_settings(provider)
        cluster_config = with_ray_aws_defaults(cluster_config)
        if provider.get("endpoint_url"):
            return cluster_config
        from ray.autoscaler._private.aws.config import bootstrap_aws  # noqa: PLC0415

        result: dict[str, Any] = bootstrap_aws(cluster_config)
        return result

    @staticmethod
    def fillout_available_node_types_resources(cluster_config: dict[str, Any]) -> dict[str, Any]:
        """Resources from the instance types, as Ray's AWS provider does, when not given.
        Ray calls this before ``bootstrap_config``, so Ray's AWS defaults are filled here too."""
        cluster_config = with_ray_aws_defaults(cluster_config)
        types = cluster_config.get("available_node_types", {})
        missing = [name for name, node_type in types.items() if "resources" not in node_type]
        if not missing:
            return cluster_config
        if cluster_config.get("provider", {}).get("endpoint_url"):
            # Ray's lookup of instance types would go to AWS itself, not to the endpoint.
            raise ConfigError(
                "required with provider.endpoint_url; set the node type's resources, e.g. {CPU: 2}",
                path=f"available_node_types.{missing[0]}.resources",
            )
        from ray.autoscaler._private.aws.node_provider import (  # noqa: PLC0415
            AWSNodeProvider,
        )

        result: dict[str, Any] = AWSNodeProvider.fillout_available_node_types_resources(
            cluster_config
        )
        return result
