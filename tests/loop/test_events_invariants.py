"""I1-I6 with EC2's events on, read from the emulator's SQS queue, under event faults drawn
from a seeded schedule: events delayed (and so reordered), duplicated, lost, and sent for
instances DescribeInstances does not show yet (they come from the ground truth, not from a
listing). Polling stays the source of truth: the invariants hold as without events."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from steadyscale.core.lifecycle import HAS_INSTANCE, Status
from steadyscale.emulator import Emulator
from steadyscale.errors import CloudError
from steadyscale.loop.inbox import Inbox, PolledInbox
from steadyscale.providers.sqs import SqsQueue
from tests import eventshapes as shapes
from tests.cluster import Cluster, make_cluster

QUEUE = "steadyscale-events"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _inbox(emu: Emulator) -> Inbox:
    emu.client(service="sqs").create_queue(QueueName=QUEUE)
    queue = SqsQueue(
        region="us-east-1", queue_name=QUEUE, endpoint_url=emu.endpoint_url, credentials=CREDENTIALS
    )

    def failed(exc: CloudError) -> None:
        raise AssertionError(f"the emulator's SQS failed: {exc}")

    return PolledInbox(queue, max_messages=10, on_error=failed)


@dataclass
class FaultyBridge:
    """EventBridge with faults: each true state change becomes an event that may be lost,
    duplicated, or delayed by some ticks (so reordered)."""

    cluster: Cluster
    rng: random.Random
    loss: float = 0.2
    duplicate: float = 0.2
    delay: float = 0.3
    sent: dict[str, str] = field(default_factory=dict)
    later: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    tick: int = 0

    def __post_init__(self) -> None:
        sqs = self.cluster.emulator.client(service="sqs")
        self.url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
        self.sqs = sqs

    def __call__(self, _: object) -> None:
        self.tick += 1
        now = self.cluster.clock.now()
        for inst in self.cluster.truth():
            state = inst.state.value
            if state == "gone" or self.sent.get(inst.instance_id) == state:
                continue
            self.sent[inst.instance_id] = state
            if self.rng.random() < self.loss:
                continue
            event = shapes.state_change(inst.instance_id, state, now)
            copies = 2 if self.rng.random() < self.duplicate else 1
            for _ in range(copies):
                due = self.tick + (self.rng.randint(1, 6) if self.rng.random() < self.delay else 0)
                self.later.append((due, event))
        due_now = [e for t, e in self.later if t <= self.tick]
        self.later = [(t, e) for t, e in self.later if t > self.tick]
        self.rng.shuffle(due_now)
        for event in due_now:
            self.sqs.send_message(QueueUrl=self.url, MessageBody=shapes.body(event))


ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def event_cluster_factory() -> Any:
    made: list[Cluster] = []

    def make(profile: str, seed: int, **config: Any) -> tuple[Cluster, FaultyBridge]:
        events = {"queue_name": QUEUE, "full_listing_interval_seconds": 120}
        cluster = make_cluster(profile, inbox_for=_inbox, events=events, **config)
        made.append(cluster)
        return cluster, FaultyBridge(cluster, random.Random(seed))

    yield make
    for cluster in made:
        cluster.ledger.close()
        cluster.emulator.stop()


def _ready(cluster: Cluster, n: int) -> Callable[[Any], bool]:
    return lambda report: cluster.count(Status.READY) >= n and report.settled


@pytest.mark.parametrize(("profile", "seed"), [("realistic", 1), ("harsh", 2)])
def test_i1_i3_no_duplicate_no_loss_with_faulty_events(
    event_cluster_factory: Any, profile: str, seed: int
) -> None:
    cluster, bridge = event_cluster_factory(profile, seed, idle_timeout_minutes=0.5)
    seen: set[str] = set()

    def check(c: Cluster) -> None:
        bridge(c)
        records = {r.instance_id: r for r in c.ledger.nodes(include_terminal=True) if r.instance_id}
        for inst in c.truth():
            seen.add(inst.instance_id)
            record = records.get(inst.instance_id)
            assert record is not None, f"{inst.instance_id} launched but not in the ledger"
            if inst.state.value != "terminated":
                assert record.status in HAS_INSTANCE

    cluster.demand(60)
    cluster.run(_ready(cluster, 60), max_ticks=300, each=check)
    assert len(cluster.truth()) == 60  # I1: never beyond the need
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=300, each=check)
    assert len(seen) == 60 and not cluster.alive()  # I2, I3
    assert cluster.autoscaler.metrics.registry.get_sample_value(
        "steadyscale_events_duplicates_dropped_total"
    )


def test_i2_no_leak_when_the_need_goes_before_any_instance_is_visible(
    event_cluster_factory: Any,
) -> None:
    cluster, bridge = event_cluster_factory("realistic", 3, idle_timeout_minutes=0)
    cluster.demand(30)
    cluster.tick()
    assert cluster.count(Status.LAUNCHED) == 30
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=300, each=bridge)
    assert cluster.count(Status.TERMINATED) == 30


def test_i5_i6_invisible_instances_never_relaunched_nor_lost_and_events_speed_it_up(
    event_cluster_factory: Any,
) -> None:
    # Events name instances DescribeInstances shows only minutes later.
    cluster, bridge = event_cluster_factory(
        "realistic",
        4,
        visibility_timeout_seconds=600,
        emulator={
            "visibility": {"median": 200, "p99": 300, "max": 400},
            "boot": {"median": 10, "p99": 20, "max": 30},
        },
    )
    bridge.loss = 0.0
    cluster.demand(20)
    for _ in range(30):  # 150 s: most are invisible to DescribeInstances meanwhile
        cluster.tick()
        bridge(cluster)
        assert cluster.count(Status.LOST) == 0
        assert cluster.launches() == 1
    # The events moved them to ready long before a listing could show them.
    assert cluster.count(Status.READY) == 20
    cluster.run(_ready(cluster, 20), max_ticks=100, each=bridge)
    assert len(cluster.truth()) == 20
