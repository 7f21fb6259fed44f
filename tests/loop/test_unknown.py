"""I7, unknown is not unwanted, on both backends (the emulator over HTTP, and the memory
model): instances carry their ledger's id; the loop terminates only its own launches it
gave up; another ledger's instances are reported and left alone; a new ledger adopts a
live cluster and then scales it down like its own. Verdicts come from the ground truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from steadyscale.core.instances import TAG_LEDGER, TAG_REQUEST
from steadyscale.core.lifecycle import HistoryEntry, NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.loop.autoscaler import Autoscaler
from steadyscale.loop.takeover import adopt, live_unknown, unknown_at_start
from steadyscale.ops.metrics import Metrics
from steadyscale.providers.protocol import CloudProvider, LaunchSpec
from steadyscale.store.ledger import LaunchRequest, Ledger
from tests.cluster import Harness, make_cluster, make_memory_cluster

Backend = Callable[..., Harness]


@pytest.fixture(params=["emulator", "memory"])
def harness(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """``harness(**config) -> Harness`` on the emulator or the memory backend."""
    made: list[Harness] = []

    def make(**config: Any) -> Harness:
        maker = make_cluster if request.param == "emulator" else make_memory_cluster
        made.append(maker("realistic", **config))
        return made[-1]

    yield make
    for cluster in made:
        cluster.ledger.close()
        emulator = getattr(cluster, "emulator", None)
        if emulator is not None:
            emulator.stop()


def _second(cluster: Harness, ledger: Ledger) -> Autoscaler:
    """Another autoscaler on the same cluster and backend, with its own ledger."""
    first = cluster.autoscaler
    return Autoscaler(
        cluster.config,
        first.provider,
        ledger,
        cluster.clock,
        metrics=Metrics(cluster.clock),
        health=first.health,
    )


def _ready(cluster: Harness, count: int) -> None:
    cluster.demand(count)
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == count, max_ticks=200)


def test_every_instance_launched_carries_its_ledgers_id(harness: Backend) -> None:
    cluster = harness()
    _ready(cluster, 3)
    ledger_id = cluster.ledger.ledger_id
    assert ledger_id and len(ledger_id) == 36
    assert [i.tags.get(TAG_LEDGER) for i in cluster.alive()] == [ledger_id] * 3


def test_another_ledgers_instances_are_reported_and_never_terminated_past_grace(
    harness: Backend,
) -> None:
    cluster = harness(gc_grace_seconds=60, listing_interval_seconds=5)
    _ready(cluster, 2)
    theirs = {i.instance_id for i in cluster.alive()}
    other = Ledger(":memory:")
    second = _second(cluster, other)
    for _ in range(60):  # five minutes of ticks, five times the grace period
        report = second.tick()
        assert not [e for e in report.events if e.kind == "gc"]
        cluster.clock.advance(5)
    assert {i.instance_id for i in cluster.alive()} == theirs
    assert cluster.backend().calls.count("TerminateInstances") == 0
    sample = {"reason": "other_ledger"}
    assert second.metrics.registry.get_sample_value("steadyscale_unknown_instances", sample) == 2


def test_a_launch_of_ours_given_up_is_terminated_past_grace_one_without_our_id_is_not(
    harness: Backend,
) -> None:
    """The old leak protection, kept for what the ledger proves: an instance of one of its
    own requests it tracks no node for (an answer lost, then the request given up)."""
    cluster = harness(gc_grace_seconds=60, listing_interval_seconds=5)
    _ready(cluster, 1)
    [request] = cluster.ledger.requests()
    provider: CloudProvider = cluster.autoscaler.provider
    node_config = cluster.config.available_node_types["cpu"].node_config

    def surplus(token: str, ledger_id: str | None) -> str:
        spec = LaunchSpec(
            request_id=request.request_id,
            client_token=token,
            node_type="cpu",
            count=1,
            node_config=node_config,
            ledger_id=ledger_id,
        )
        return provider.launch(spec).instances[0].instance_id

    ours = surplus("ss-lost-1", cluster.ledger.ledger_id)
    unknown = surplus("ss-lost-2", None)
    cluster.run(lambda r: ours not in {i.instance_id for i in cluster.alive()}, max_ticks=60)
    assert unknown in {i.instance_id for i in cluster.alive()}
    assert cluster.clock.now() - 1_000_000.0 >= 60
    for _ in range(40):
        cluster.tick()
    assert unknown in {i.instance_id for i in cluster.alive()}
    assert len(cluster.alive()) == 2  # the node demand holds, and the unknown one


def test_a_new_ledger_adopts_a_live_cluster_then_scales_it_down_with_no_leak(
    harness: Backend,
) -> None:
    cluster = harness()
    _ready(cluster, 3)
    lost = cluster.ledger.ledger_id
    fresh = Ledger(":memory:")
    provider = cluster.autoscaler.provider
    assert len(unknown_at_start(provider, fresh)) == 3
    done = adopt(provider, fresh, cluster.clock.now())
    assert done.by_type() == {"cpu": 3} and not done.refused
    assert {r.status for r in fresh.nodes()} == {Status.RUNNING}
    for _ in range(10):  # EC2 may not tag an instance at once: the next adopt does
        if not done.untagged:
            break
        cluster.clock.advance(30)
        done = adopt(provider, fresh, cluster.clock.now())
        assert not done.adopted
    assert unknown_at_start(provider, fresh) == [] and live_unknown(provider, fresh) == []
    assert {i.tags.get(TAG_LEDGER) for i in cluster.alive()} == {fresh.ledger_id} != {lost}
    second = _second(cluster, fresh)
    launches = cluster.launches()
    fresh.set_demand([DemandItem(bundle={"CPU": 2}, count=1)], cluster.clock.now())
    for _ in range(100):
        second.tick()
        cluster.clock.advance(5)
        if len(cluster.alive()) == 1 and second.book.active()[0].status is not Status.TERMINATING:
            break
    assert len(cluster.alive()) == 1 and cluster.launches() == launches
    fresh.set_demand([], cluster.clock.now())
    for _ in range(100):
        second.tick()
        cluster.clock.advance(5)
        if not cluster.alive():
            break
    assert cluster.alive() == [] and cluster.launches() == launches  # no leak, no relaunch


def test_a_request_sent_before_ledgers_had_ids_is_resent_with_the_tags_first_sent(
    tmp_path: Path,
) -> None:
    """EC2 compares the parameters of one ClientToken: a request an older steadyscale
    recorded (open, its answer lost) is resent without the ledger-id tag; new ones carry it."""
    path = tmp_path / "old.db"
    old = Ledger(path)
    old.save_request(
        LaunchRequest("r-old", "cpu", 1, "ss-r-old", "open", 999_990.0, attempts=1, sent_at=1.0)
    )
    node = NodeRecord("n-old", "cpu", Status.REQUESTED, 999_990.0, request_id="r-old")
    node.history.append(HistoryEntry(Status.REQUESTED, 999_990.0, "RunInstances r-old"))
    with old.transaction():
        old.save_nodes([node], [("n-old", node.history[0])])
    old._db.execute("DELETE FROM meta WHERE key = 'ledger_id'")  # as an older version left it
    old.close()
    cluster = make_memory_cluster("realistic")
    try:
        upgraded = Ledger(path)
        assert upgraded.untagged_requests() == {"r-old"} and upgraded.ledger_id
        second = _second(cluster, upgraded)
        upgraded.set_demand([DemandItem(bundle={"CPU": 2}, count=2)], cluster.clock.now())
        for _ in range(20):
            second.tick()
            cluster.clock.advance(5)
        tags = {i.tags[TAG_REQUEST]: i.tags.get(TAG_LEDGER) for i in cluster.alive()}
        assert tags.pop("r-old") is None
        assert list(tags.values()) == [upgraded.ledger_id]
        upgraded.close()
    finally:
        cluster.ledger.close()
