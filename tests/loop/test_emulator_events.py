"""The loop on the emulator's own events (its EventBridge rules deliver EC2's events to
the queue `steadyscale events setup` makes): each event type drives its transition, and
impaired status checks (DescribeInstanceStatus) replace a node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from steadyscale.app.eventsource import EMULATOR_CREDENTIALS
from steadyscale.core.lifecycle import ACTIVE, Status
from steadyscale.emulator import Emulator
from steadyscale.errors import CloudError
from steadyscale.loop.inbox import Inbox, PolledInbox
from steadyscale.providers.event_setup import EventSetup
from steadyscale.providers.sqs import SqsQueue
from tests.cluster import Cluster, cluster_config, make_cluster
from tests.loop.eventful import spot_types

QUEUE = "steadyscale-events"
EVENTS: dict[str, Any] = {"queue_name": QUEUE, "full_listing_interval_seconds": 300}


def _inbox(emu: Emulator) -> Inbox:
    config = cluster_config(events=EVENTS)
    EventSetup(config, emu.client(service="sqs"), emu.client(service="events")).setup()
    queue = SqsQueue(
        region="us-east-1",
        queue_name=QUEUE,
        endpoint_url=emu.endpoint_url,
        credentials=EMULATOR_CREDENTIALS,
    )

    def failed(exc: CloudError) -> None:
        raise AssertionError(exc)

    return PolledInbox(queue, max_messages=10, on_error=failed)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    made = make_cluster(
        "realistic", inbox_for=_inbox, events=EVENTS, available_node_types=spot_types()
    )
    yield made
    made.ledger.close()
    made.emulator.stop()


def _up(cluster: Cluster) -> list[Any]:
    return [r for r in cluster.autoscaler.records.values() if r.status is Status.READY]


def _start(cluster: Cluster, n: int) -> None:
    cluster.demand(n)
    cluster.run(lambda r: cluster.count(Status.READY) >= n and r.settled, max_ticks=60)


def _metric(cluster: Cluster, name: str, **labels: str) -> float:
    return cluster.autoscaler.metrics.registry.get_sample_value(name, labels) or 0.0


def test_state_changes_from_the_emulator_move_nodes_with_one_listing(cluster: Cluster) -> None:
    _start(cluster, 4)
    assert _metric(cluster, "steadyscale_events_received_total", type="state_change") >= 8
    assert cluster.emulator.calls.count("DescribeInstances") <= 3


def test_a_warning_replaces_before_the_reclaim(cluster: Cluster) -> None:
    _start(cluster, 2)
    victim = _up(cluster)[0]
    cluster.emulator.warn([victim.instance_id])
    cluster.run(lambda r: victim.status is Status.INTERRUPTED, max_ticks=60)
    assert _metric(cluster, "steadyscale_interruptions_total", warned="yes") == 1
    assert _metric(cluster, "steadyscale_replacements_ready_before_reclaim_total") == 1
    assert cluster.count(Status.READY) == 2


@pytest.mark.parametrize("kind", ["rebalance", "retirement", "impaired"])
def test_rebalance_retirement_and_impaired_checks_replace_ahead_of_time(
    cluster: Cluster, kind: str
) -> None:
    _start(cluster, 2)
    node = _up(cluster)[0]
    if kind == "rebalance":
        cluster.emulator.recommend_rebalance([node.instance_id])
    elif kind == "retirement":
        cluster.emulator.retire([node.instance_id], lead=3600)
    else:
        cluster.emulator.impair([node.instance_id])

    def check(c: Cluster) -> None:
        assert c.count(Status.READY) >= 2  # never below what demand needs

    cluster.run(lambda r: node.status not in ACTIVE and r.settled, max_ticks=200, each=check)
    assert node.status in (Status.TERMINATING, Status.TERMINATED)
    assert len(cluster.truth()) == 3


def test_i1_to_i3_hold_under_the_emulators_own_delivery_faults() -> None:
    faults = {
        "events": {
            "delivery": {
                "delay": {"median": 5, "p99": 30, "max": 60},
                "duplicate_probability": 0.3,
                "reorder_probability": 0.3,
                "loss_probability": 0.2,
            }
        }
    }
    cluster = make_cluster(
        "harsh", inbox_for=_inbox, events=EVENTS, emulator=faults, idle_timeout_minutes=0.5
    )
    try:
        cluster.demand(30)
        cluster.run(lambda r: cluster.count(Status.READY) >= 30 and r.settled, max_ticks=300)
        assert len(cluster.truth()) == 30  # I1
        cluster.demand(0)
        cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=300)
        assert not cluster.alive()  # I2
        known = cluster.ledger.known_instance_ids()
        assert {i.instance_id for i in cluster.truth()} <= known  # I3
        assert _metric(cluster, "steadyscale_events_duplicates_dropped_total") > 0
        assert _metric(cluster, "steadyscale_event_lag_seconds_count", type="state_change") > 0
    finally:
        cluster.ledger.close()
        cluster.emulator.stop()
