"""Strangers: cluster instances no record explains. Only those the ledger proves unwanted
(its own id, a launch request of its own given up) are terminated past the grace period;
the unknown are reported (log once, metric, status) and never terminated (I7)."""

from __future__ import annotations

import json
import logging

import pytest

from steadyscale.core.instances import TAG_CLUSTER, TAG_LEDGER, TAG_REQUEST, CloudInstance
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.loop.strangers import Strangers
from steadyscale.ops.metrics import Metrics
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import UNKNOWN_INSTANCES, LaunchRequest, Ledger
from tests.cluster import cluster_config
from tests.loop.fakes import ScriptedEC2


def _ledger_with_request(request_id: str = "r-1") -> Ledger:
    ledger = Ledger(":memory:")
    ledger.save_request(
        LaunchRequest(
            request_id=request_id,
            node_type="cpu",
            count=1,
            client_token=f"ss-{request_id}",
            status="done",
            created_at=0.0,
        )
    )
    return ledger


def _strangers(ec2: ScriptedEC2, ledger: Ledger, clock: FakeClock) -> tuple[Strangers, Metrics]:
    metrics = Metrics(clock)
    config = cluster_config(gc_grace_seconds=300)
    reporter = Reporter(clock)
    return Strangers(config, ec2.as_provider(), reporter, ledger=ledger, metrics=metrics), metrics


def _tagged(instance_id: str, state: str = "running", **tags: str) -> CloudInstance:
    return CloudInstance(instance_id, state, tags={TAG_CLUSTER: "test", **tags})


def _ours(ledger: Ledger, instance_id: str, request_id: str = "r-1", **kw: object) -> CloudInstance:
    tags = {TAG_CLUSTER: "test", TAG_REQUEST: request_id, TAG_LEDGER: str(ledger.ledger_id)}
    return CloudInstance(instance_id, tags=tags, **kw)  # type: ignore[arg-type]


def test_a_given_up_launch_of_ours_is_terminated_once_past_the_grace_period() -> None:
    clock = FakeClock(1000.0)
    ec2 = ScriptedEC2()
    ledger = _ledger_with_request()
    strangers, _ = _strangers(ec2, ledger, clock)
    unborn = _ours(ledger, "i-9", state="running")  # no launch time: from the first sighting
    old = _ours(ledger, "i-8", state="running", launch_time=0.0)
    going = _ours(ledger, "i-7", state="shutting-down", launch_time=0.0)
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
    ledger = _ledger_with_request()
    strangers, _ = _strangers(ec2, ledger, clock)
    stranger = _ours(ledger, "i-9", state="running")
    strangers.handle([stranger], TickReport(0.0), 0.0)
    strangers.handle([], TickReport(200.0), 200.0)
    strangers.handle([stranger], TickReport(400.0), 400.0)
    assert ec2.calls == []


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({TAG_LEDGER: "another-ledger", TAG_REQUEST: "r-1"}, "other_ledger"),
        ({TAG_REQUEST: "r-1"}, "no_ledger_id"),
        ({}, "no_ledger_id"),
    ],
)
def test_an_instance_another_ledger_or_none_launched_is_never_terminated(
    tags: dict[str, str], reason: str
) -> None:
    """Even past the grace period, and even when its request-id tag names a request of
    ours (only this ledger's id proves it is ours)."""
    clock = FakeClock(0.0)
    ec2 = ScriptedEC2()
    ledger = _ledger_with_request()
    strangers, metrics = _strangers(ec2, ledger, clock)
    stranger = CloudInstance("i-5", "running", tags={TAG_CLUSTER: "test", **tags}, launch_time=0.0)
    for now in (0.0, 10_000.0, 100_000.0):
        report = TickReport(now)
        strangers.handle([stranger], report, now)
        assert not report.events
    assert ec2.calls == []
    assert metrics.registry.get_sample_value("steadyscale_unknown_instances", {"reason": reason})
    listed = json.loads(ledger.meta(UNKNOWN_INSTANCES) or "[]")
    assert [(i["instance_id"], i["reason"]) for i in listed] == [("i-5", reason)]


def test_an_instance_with_our_id_but_a_request_we_have_no_record_of_is_left_alone() -> None:
    """A ledger restored from an older export has our id, not the launches made since."""
    clock = FakeClock(0.0)
    ec2 = ScriptedEC2()
    ledger = _ledger_with_request()
    strangers, metrics = _strangers(ec2, ledger, clock)
    stranger = _ours(ledger, "i-6", request_id="r-unrecorded", state="running", launch_time=0.0)
    strangers.handle([stranger], TickReport(10_000.0), 10_000.0)
    assert ec2.calls == []
    sample = {"reason": "unknown_request"}
    assert metrics.registry.get_sample_value("steadyscale_unknown_instances", sample) == 1


def test_an_unknown_instance_is_warned_about_once_and_the_count_follows_the_listing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0.0)
    ec2 = ScriptedEC2()
    ledger = _ledger_with_request()
    strangers, metrics = _strangers(ec2, ledger, clock)
    stranger = _tagged("i-4")
    with caplog.at_level(logging.WARNING, logger="steadyscale.autoscaler"):
        for now in (0.0, 5.0, 10.0):
            strangers.handle([stranger], TickReport(now), now)
    assert sum("i-4" in r.getMessage() for r in caplog.records) == 1
    assert "steadyscale ledger adopt" in caplog.records[0].getMessage()
    strangers.handle([], TickReport(15.0), 15.0)
    sample = {"reason": "no_ledger_id"}
    assert metrics.registry.get_sample_value("steadyscale_unknown_instances", sample) == 0
    assert json.loads(ledger.meta(UNKNOWN_INSTANCES) or "null") == []
