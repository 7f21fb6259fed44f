"""The Ray provider's book of nodes: what it knows of each node (from RunInstances answers,
listings and lookups), the tags it set and those EC2 has not taken yet, and the nodes it
terminated or stopped. One lock guards it; EC2 calls happen outside, in its callers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ray.autoscaler.tags import (
    TAG_RAY_CLUSTER_NAME,
    TAG_RAY_LAUNCH_CONFIG,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_NAME,
    TAG_RAY_USER_NODE_TYPE,
)

from steadyscale.core.instances import CloudInstance
from steadyscale.ray.journal import PendingLaunch

log = logging.getLogger("steadyscale.ray")

LIVE_STATES = ("pending", "running")


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


def kind_of(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags that say which nodes are interchangeable: kind, node type, launch config."""
    return {
        k: tags[k]
        for k in (TAG_RAY_NODE_KIND, TAG_RAY_LAUNCH_CONFIG, TAG_RAY_USER_NODE_TYPE)
        if k in tags
    }


def lifecycle_of(instance: CloudInstance) -> str:
    """EC2 names only the spot lifecycle; an instance it shows without one is on-demand."""
    return instance.lifecycle or "on-demand"


@dataclass
class Node:
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

    def pending_launch(self) -> PendingLaunch:
        """The node as the state file keeps it until a listing shows it."""
        return PendingLaunch(
            instance_id=self.instance_id,
            tags=dict(self.tags),
            private_ip=self.private_ip,
            launched_at=self.known_since,
            lifecycle=self.lifecycle,
        )


class NodeBook:
    """Everything the provider knows, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._nodes: dict[str, Node] = {}
        self._tags_set: dict[str, dict[str, str]] = {}  # kept over listings
        self._unsent_tags: dict[str, dict[str, str]] = {}
        self._gone: set[str] = set()  # terminated or stopped by us

    def load(self, launches: Iterable[PendingLaunch], gone: Iterable[str]) -> None:
        """What a provider before this one left in the state file."""
        with self._lock:
            for launch in launches:
                self._nodes[launch.instance_id] = Node(
                    instance_id=launch.instance_id,
                    state="pending",
                    private_ip=launch.private_ip,
                    tags=dict(launch.tags),
                    known_since=launch.launched_at,
                    lifecycle=launch.lifecycle,
                )
            self._gone.update(gone)

    # ------------------------------------------------------------------ reading

    def get(self, node_id: str) -> Node | None:
        with self._lock:
            return self._nodes.get(node_id)

    def is_gone(self, node_id: str) -> bool:
        with self._lock:
            return node_id in self._gone

    def matching(self, tag_filters: Mapping[str, str]) -> list[str]:
        with self._lock:
            return [
                node_id
                for node_id, node in self._nodes.items()
                if all(node.tags.get(k) == v for k, v in tag_filters.items())
            ]

    # ------------------------------------------------------------------ what EC2 shows

    def _remember(self, instance: CloudInstance, now: float) -> Node:
        """Record what EC2 showed; tags this provider set stay over older ones shown."""
        node = self._nodes.get(instance.instance_id)
        tags = from_aws_tags(instance.tags)
        tags.update(self._tags_set.get(instance.instance_id, {}))
        if node is None:
            node = Node(
                instance_id=instance.instance_id,
                state=instance.state,
                private_ip=instance.private_ip,
                tags=tags,
                known_since=now,
            )
            self._nodes[instance.instance_id] = node
        else:
            node.tags = {**node.tags, **tags}
        node.absorb(instance, now)
        return node

    def absorb_listing(
        self, listed: Sequence[CloudInstance], now: float
    ) -> tuple[list[str], list[str]]:
        """Record a listing; returns the ids it showed and the known ids it omitted."""
        with self._lock:
            shown = {i.instance_id: i for i in listed if i.instance_id not in self._gone}
            for instance in shown.values():
                self._remember(instance, now)
            missing = [i for i in self._nodes if i not in shown]
        return list(shown), missing

    def settle(
        self,
        missing: Sequence[str],
        shown: Mapping[str, CloudInstance],
        now: float,
        *,
        visibility_timeout: float,
    ) -> list[str]:
        """Nodes a listing omitted, after a lookup by id showed ``shown``: not visible yet,
        a listing that flickers, or gone. Only EC2 saying so, or a long silence, drops one;
        returns the dropped ids."""
        dropped: list[str] = []
        with self._lock:
            for instance_id in missing:
                node = self._nodes.get(instance_id)
                if node is None:
                    continue
                instance = shown.get(instance_id)
                if instance is not None:
                    node.absorb(instance, now)
                    if instance.state not in LIVE_STATES:
                        dropped.append(instance_id)
                    continue
                last = node.seen_at if node.seen_at is not None else node.known_since
                if now - last > visibility_timeout:
                    log.warning(
                        "%s: not shown by EC2 for %.0f s; dropping it", instance_id, now - last
                    )
                    dropped.append(instance_id)
            for instance_id in dropped:
                del self._nodes[instance_id]
        return dropped

    def view(self, shown: CloudInstance, cluster_name: str, now: float) -> Node:
        """A node EC2 showed by id that the book lacked: remembered if it is a live node of
        the cluster, else described as it is."""
        with self._lock:
            if shown.tags.get(TAG_RAY_CLUSTER_NAME) == cluster_name and (
                shown.state in LIVE_STATES and shown.instance_id not in self._gone
            ):
                return self._remember(shown, now)
            node = Node(
                instance_id=shown.instance_id,
                state=shown.state,
                private_ip=shown.private_ip,
                tags=from_aws_tags(shown.tags),
            )
            node.absorb(shown, now)
            return node

    def set_public_ip(self, node: Node, public_ip: str | None) -> None:
        with self._lock:
            node.public_ip = public_ip

    # ------------------------------------------------------------------ tags

    def set_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._tags_set.setdefault(node_id, {}).update(tags)
            self._unsent_tags.setdefault(node_id, {}).update(tags)
            node = self._nodes.get(node_id)
            if node is not None:
                node.tags.update(tags)

    def take_unsent_tags(self) -> dict[str, dict[str, str]]:
        with self._lock:
            unsent, self._unsent_tags = self._unsent_tags, {}
        return unsent

    def unsent_again(self, node_ids: Iterable[str], unsent: Mapping[str, dict[str, str]]) -> None:
        """Tags EC2 did not take: sent at the next flush, under any set since."""
        with self._lock:
            for node_id in node_ids:
                if node_id in self._gone:
                    continue
                later = self._unsent_tags.setdefault(node_id, {})
                self._unsent_tags[node_id] = {**unsent[node_id], **later}

    # ------------------------------------------------------------------ our own moves

    def add_launched(
        self, instances: Sequence[CloudInstance], aws_tags: Mapping[str, str], now: float
    ) -> tuple[list[str], list[PendingLaunch]]:
        """Nodes from a RunInstances answer. Returns the ids that count as launched (not
        terminated since) and the new ones, for the state file."""
        counted: list[str] = []
        new: list[PendingLaunch] = []
        with self._lock:
            for instance in instances:
                if instance.instance_id in self._gone:
                    continue  # an answer repeated after Ray terminated the node
                counted.append(instance.instance_id)
                if instance.instance_id in self._nodes:  # a listing showed it first
                    continue
                node = Node(
                    instance_id=instance.instance_id,
                    state="pending",
                    private_ip=instance.private_ip,
                    tags=from_aws_tags({**instance.tags, **aws_tags}),
                    known_since=now,
                    lifecycle=lifecycle_of(instance),
                )
                self._nodes[instance.instance_id] = node
                new.append(node.pending_launch())
        return counted, new

    def restart(self, instance: CloudInstance, now: float) -> None:
        """A stopped node started again: in the book as pending, no longer gone."""
        with self._lock:
            self._gone.discard(instance.instance_id)
            node = self._remember(instance, now)
            node.state = "pending"

    def take(self, node_ids: Iterable[str]) -> dict[str, Node | None]:
        """Nodes to terminate or stop: out of the book, gone, their unsent tags dropped.
        Returns each distinct id with the node as it was (None if the book lacked it)."""
        taken: dict[str, Node | None] = {}
        with self._lock:
            for node_id in dict.fromkeys(node_ids):
                taken[node_id] = self._nodes.pop(node_id, None)
                self._gone.add(node_id)
                self._unsent_tags.pop(node_id, None)
        return taken

    def put_back(self, node_ids: Iterable[str], taken: Mapping[str, Node]) -> list[PendingLaunch]:
        """Nodes a refused termination leaves running go back in the book. Returns those no
        listing has shown yet: the state file keeps them too."""
        restored: list[PendingLaunch] = []
        with self._lock:
            for node_id in node_ids:
                self._gone.discard(node_id)
                node = taken.get(node_id)
                if node is not None:
                    self._nodes.setdefault(node_id, node)
                    if node.seen_at is None:
                        restored.append(node.pending_launch())
        return restored
