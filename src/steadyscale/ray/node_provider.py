"""Ray's ``NodeProvider`` on steadyscale's EC2 layer: a drop-in for ``provider: type: aws``.

Ray's autoscaler asks about nodes by id right after creating them; EC2 may not show them
for seconds to minutes. This provider answers from what it knows: the RunInstances
response (id, private IP, tags) until a listing shows the node, tags it set until EC2
takes them, and termination it asked for until EC2 confirms. A node missing from one
listing is looked up by id before it is dropped; nothing here raises because EC2 is late.
This class is the adapter Ray instantiates; the work is done by the book of nodes, the
observer, the launcher and the terminator, on any ``CloudProvider``.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from ray.autoscaler.node_provider import NodeProvider

from steadyscale.config import DEFAULT_RATE_LIMITS, bucket_pairs
from steadyscale.providers.aws import EC2Provider
from steadyscale.providers.events import EventQueue
from steadyscale.providers.protocol import ClientOptions, CloudProvider
from steadyscale.providers.sqs import SqsQueue
from steadyscale.ray import hooks
from steadyscale.ray.adoption import Adoption
from steadyscale.ray.book import LIVE_STATES, NodeBook, to_aws_tags
from steadyscale.ray.journal import StateFile
from steadyscale.ray.launcher import Launcher
from steadyscale.ray.observer import Observer
from steadyscale.ray.settings import RayProviderSettings, default_state_path, parse_settings
from steadyscale.ray.shared import Shared
from steadyscale.ray.terminator import Terminator
from steadyscale.ray.unanswered import UNANSWERED, Reasons
from steadyscale.ray.warnings import Forewarnings
from steadyscale.retries.clock import Clock, ScaledClock, WallClock

log = logging.getLogger("steadyscale.ray")


def default_clock(settings: RayProviderSettings) -> Clock:
    if settings.time_scale == 1.0:
        return WallClock()
    return ScaledClock(settings.time_scale, origin=time.time())


def boto3_provider(settings: RayProviderSettings, cluster_name: str, clock: Clock) -> EC2Provider:
    """The provider Ray's config describes: boto3 on AWS or on its ``endpoint_url``."""
    return EC2Provider(
        cluster_name=cluster_name,
        region=settings.region,
        clock=clock,
        options=ClientOptions(
            max_attempts=settings.max_attempts,
            lookup_deadline=settings.lookup_deadline_seconds,
            rate_limits=bucket_pairs(DEFAULT_RATE_LIMITS),
        ),
        endpoint_url=settings.endpoint_url,
        credentials=settings.aws_credentials,
    )


def forewarnings(
    settings: RayProviderSettings, clock: Clock, queue: EventQueue | None
) -> Forewarnings | None:
    """The interruption warnings of the ``events`` key's queue (at the endpoint and with
    the credentials of the provider section); None without the key: nothing changes."""
    if settings.events is None:
        return None
    if queue is None:
        queue = SqsQueue(
            region=settings.region,
            queue_url=settings.events.queue_url,
            queue_name=settings.events.queue_name,
            endpoint_url=settings.endpoint_url,
            credentials=settings.aws_credentials,
        )
    return Forewarnings(settings.events, queue, clock)


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
        cloud: CloudProvider | None = None,
        events: EventQueue | None = None,
    ) -> None:
        """Ray passes the two arguments. ``clock`` and ``rng`` (backoff jitter) are for tests
        on a fake clock; ``cloud`` replaces the boto3 provider the config describes (the
        in-memory backend, say), ``events`` the SQS queue its ``events`` key names."""
        super().__init__(provider_config, cluster_name)
        self.settings = parse_settings(provider_config)
        self.cache_stopped_nodes = self.settings.cache_stopped_nodes
        self.clock = clock if clock is not None else default_clock(self.settings)
        self.cloud: CloudProvider = (
            cloud if cloud is not None else boto3_provider(self.settings, cluster_name, self.clock)
        )
        path = self.settings.state_path or default_state_path(cluster_name, self.settings.region)
        self.state = StateFile(path)
        self._book = NodeBook()
        self._book.load(self.state.launches(), [t.instance_id for t in self.state.terminations()])
        self._reasons = Reasons()
        shared = Shared(
            cloud=self.cloud,
            book=self._book,
            state=self.state,
            clock=self.clock,
            settings=self.settings,
            cluster_name=cluster_name,
            reasons=self._reasons,
            adoption=Adoption(
                path=str(path),
                state=self.state,
                opened_at=self.clock.now(),
                hold_seconds=self.settings.lost_state_hold_seconds,
            ),
        )
        self._observer = Observer(shared)
        self._launcher = Launcher(
            shared, rng=rng if rng is not None else random.Random(), tag_node=self.set_node_tags
        )
        self._terminator = Terminator(shared)
        self._warnings = forewarnings(self.settings, self.clock, events)

    # ------------------------------------------------------------------ what Ray asks

    def non_terminated_nodes(self, tag_filters: dict[str, str]) -> list[str]:
        self._retry_pending_work()
        self._observer.refresh()
        if self._warnings is None:
            return self._book.matching(tag_filters)
        self._warnings.refresh()  # a warned node is reported gone: Ray replaces it now
        return [n for n in self._book.matching(tag_filters) if not self._warnings.warned(n)]

    def is_running(self, node_id: str) -> bool:
        node = self._observer.node(node_id)
        return node is not None and node.state == "running"

    def is_terminated(self, node_id: str) -> bool:
        if self._book.is_gone(node_id):
            return True
        if self._warnings is not None and self._warnings.warned(node_id):
            return True
        node = self._observer.node(node_id)
        # Not shown is not gone: only a state EC2 reports ends a node.
        return node is not None and node.state not in LIVE_STATES

    def node_tags(self, node_id: str) -> dict[str, str]:
        node = self._observer.node(node_id)
        return dict(node.tags) if node is not None else {}

    def internal_ip(self, node_id: str) -> str:
        node = self._observer.node(node_id)
        return (node.private_ip or "") if node is not None else ""

    def external_ip(self, node_id: str) -> str | None:
        return self._observer.public_ip(node_id)

    # ------------------------------------------------------------------ what Ray changes

    def set_node_tags(self, node_id: str, tags: dict[str, str]) -> None:
        self._book.set_tags(node_id, tags)
        self._flush_tags()

    def _flush_tags(self) -> None:
        """One CreateTags per set of identical tags; what EC2 does not take yet (a fresh id,
        throttling) waits for the next flush, which every listing triggers."""
        unsent = self._book.take_unsent_tags()
        groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for node_id, tags in unsent.items():
            groups.setdefault(tuple(sorted(tags.items())), []).append(node_id)
        retry: list[str] = []
        for pairs, node_ids in groups.items():
            try:
                retry.extend(self.cloud.create_tags(node_ids, to_aws_tags(dict(pairs))))
            except UNANSWERED as exc:
                log.info("CreateTags on %d nodes deferred (%s)", len(node_ids), self._reasons(exc))
                retry.extend(node_ids)
        if retry:
            self._book.unsent_again(retry, unsent)

    def create_node(
        self, node_config: dict[str, Any], tags: dict[str, str], count: int
    ) -> dict[str, Any]:
        self._observer.look_once()
        return self._launcher.create(node_config, tags, count)

    def create_node_with_resources_and_labels(
        self,
        node_config: dict[str, Any],
        tags: dict[str, str],
        count: int,
        resources: dict[str, float],
        labels: dict[str, str],
    ) -> dict[str, Any]:
        return self.create_node(node_config, tags, count)

    def terminate_node(self, node_id: str) -> None:
        self.terminate_nodes([node_id])

    def terminate_nodes(self, node_ids: list[str]) -> None:
        self._terminator.terminate(node_ids)

    def _retry_pending_work(self) -> None:
        self._launcher.resend()
        self._terminator.retry()
        self._flush_tags()

    # ------------------------------------------------------------------ config hooks

    @staticmethod
    def bootstrap_config(cluster_config: dict[str, Any]) -> dict[str, Any]:
        return hooks.bootstrap_config(cluster_config)

    @staticmethod
    def fillout_available_node_types_resources(cluster_config: dict[str, Any]) -> dict[str, Any]:
        return hooks.fillout_available_node_types_resources(cluster_config)
