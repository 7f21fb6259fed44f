"""The observer: one cluster listing per listing interval, lookups of nodes in motion
between, and a lookup by id for starting nodes the filter still does not show."""

from __future__ import annotations

from steadyscale.core.instances import TAG_CLUSTER, CloudInstance
from steadyscale.core.lifecycle import Status
from steadyscale.errors import CloudUnavailable
from steadyscale.loop.observer import Observer
from steadyscale.loop.report import TickReport
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import FakeClock
from tests.cluster import cluster_config
from tests.loop.fakes import ScriptedEC2, node

CONFIG = cluster_config(listing_interval_seconds=30, loop_interval_seconds=5)


def _observer(ec2: ScriptedEC2, clock: FakeClock) -> Observer:
    return Observer(CONFIG, ec2.as_provider(), clock, Metrics(clock))


def test_the_listing_runs_once_per_interval_and_only_moving_nodes_are_looked_up_between() -> None:
    clock = FakeClock(0.0)
    ready = node(1, Status.READY, running_at=0.0)
    launched = node(2, Status.LAUNCHED, launched_at=0.0)
    ec2 = ScriptedEC2(shown={"i-1": CloudInstance("i-1", "running")})
    observer = _observer(ec2, clock)
    first = observer.observe([ready, launched], TickReport(0.0))
    assert first is not None and first.listing_complete
    assert ec2.calls == [("list_cluster", ()), ("describe", ("i-2",))]
    ec2.calls.clear()
    clock.advance(10.0)  # the launch is two ticks old: also asked for by id
    later = observer.observe([ready, launched], TickReport(10.0))
    assert later is not None and not later.listing_complete
    assert ec2.calls == [("describe", ("i-2",)), ("describe_by_id", ("i-2",))]
    ec2.calls.clear()
    clock.advance(20.0)
    observer.observe([ready, launched], TickReport(30.0))
    assert ec2.calls[0] == ("list_cluster", ())


def test_a_running_node_a_complete_listing_left_out_is_looked_up() -> None:
    clock = FakeClock(0.0)
    # A flickering listing: complete, yet without the running node.
    ec2 = ScriptedEC2(shown={"i-1": CloudInstance("i-1", "running")}, listing=list)
    observation = _observer(ec2, clock).observe([node(1, Status.READY)], TickReport(0.0))
    assert ec2.calls == [("list_cluster", ()), ("describe", ("i-1",))]
    assert observation is not None and set(observation.instances) == {"i-1"}


def test_failed_calls_that_showed_nothing_give_no_observation() -> None:
    clock = FakeClock(0.0)

    def down() -> list[CloudInstance]:
        raise CloudUnavailable("Unavailable", "try again")

    ec2 = ScriptedEC2(listing=down)
    report = TickReport(0.0)
    assert _observer(ec2, clock).observe([node(1, Status.READY)], report) is None
    assert report.errors == ["listing: Unavailable: try again"]


def test_a_full_listing_also_lists_each_former_cluster_name_and_only_then() -> None:
    """Carried-over nodes keep their former tag: one more listing per former name at each
    full listing shows them; between listings they cost nothing more."""
    clock = FakeClock(0.0)
    carried = CloudInstance("i-1", "running", tags={TAG_CLUSTER: "old"})
    ec2 = ScriptedEC2(shown={"i-1": carried}, listing=list)  # the new name shows nothing
    observer = _observer(ec2, clock)
    observation = observer.observe([node(1, Status.READY)], TickReport(0.0), former={"old"})
    assert ec2.calls == [("list_cluster", ()), ("list_tagged", (TAG_CLUSTER, "old"))]
    assert observation is not None and observation.listing_complete
    assert observation.instances == {"i-1": carried}
    ec2.calls.clear()
    clock.advance(5.0)
    observer.observe([node(1, Status.READY)], TickReport(5.0), former={"old"})
    assert ec2.calls == []
