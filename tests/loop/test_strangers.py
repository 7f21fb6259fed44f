"""Strangers: cluster instances no record explains are terminated past the grace period."""

from __future__ import annotations

from steadyscale.core.instances import CloudInstance
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.loop.strangers import Strangers
from steadyscale.retries.clock import FakeClock
from tests.cluster import cluster_config
from tests.loop.fakes import ScriptedEC2


def test_a_stranger_is_terminated_once_past_the_grace_period_from_when_it_was_first_seen() -> None:
    clock = FakeClock(1000.0)
    ec2 = ScriptedEC2()
    strangers = Strangers(cluster_config(gc_grace_seconds=300), ec2.as_provider(), Reporter(clock))
    unborn = CloudInstance("i-9", "running")  # no launch time: counted from the first sighting
    old = CloudInstance("i-8", "running", launch_time=0.0)
    going = CloudInstance("i-7", "shutting-down", launch_time=0.0)
    report = TickReport(1000.0)
    strangers.handle([unborn, old, going], report, 1000.0)
    assert ec2.calls == [("terminate", ("i-8",))]
    assert [e.kind for e in report.events] == ["gc"]
    strangers.handle([unborn], TickReport(1299.0), 1299.0)
    assert len(ec2.calls) == 1
    strangers.handle([unborn], TickReport(1300.0), 1300.0)
    assert ec2.calls[-1] == ("terminate", ("i-9",))


def test_a_stranger_that_left_the_listing_starts_its_grace_period_again() -> None:
    ec2 = ScriptedEC2()
    clock = FakeClock(0.0)
    strangers = Strangers(cluster_config(gc_grace_seconds=300), ec2.as_provider(), Reporter(clock))
    stranger = CloudInstance("i-9", "running")
    strangers.handle([stranger], TickReport(0.0), 0.0)
    strangers.handle([], TickReport(200.0), 200.0)
    strangers.handle([stranger], TickReport(400.0), 400.0)
    assert ec2.calls == []
