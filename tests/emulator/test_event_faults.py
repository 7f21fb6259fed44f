"""EventBridge's delivery faults, as knobs of the seeded model: delay, duplicates,
reordering and loss, each recorded in the ground truth of events."""

from __future__ import annotations

import random
from typing import Any

from steadyscale.ec2model.event_settings import Delivery
from steadyscale.ec2model.events import DetailType, EventFeed
from tests.conftest import FakeEmulator, launch
from tests.emulator.test_events import Listener

FIXED_10 = {"median": 10, "p99": 10, "max": 10}


def _delivery(**knobs: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "delay": {"median": 0, "p99": 0, "max": 0},
        "duplicate_probability": 0,
        "reorder_probability": 0,
        "loss_probability": 0,
    }
    return {"events": {"delivery": {**base, **knobs}}}


def test_a_delayed_event_reaches_the_queue_only_after_its_delay(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none", **_delivery(delay=FIXED_10))
    listener = Listener(emu)
    (iid,) = launch(ec2)
    clock.advance(9.9)
    assert listener.drain() == []
    clock.advance(0.1)
    bodies = listener.drain()  # with no boot delay, pending and running at once
    assert [b["detail"] for b in bodies] == [
        {"instance-id": iid, "state": "pending"},
        {"instance-id": iid, "state": "running"},
    ]
    for truth in emu.events():
        assert truth["due"] == [10.0] and truth["delivered"] == [10.0]
    assert bodies[0]["time"] == "1970-01-01T00:00:00Z"  # the event's time, not delivery's


def test_a_duplicate_arrives_twice_with_the_same_id(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", **_delivery(duplicate_probability=1))
    listener = Listener(emu)
    launch(ec2)
    bodies = listener.drain()
    truth = emu.events()
    assert len(truth) == 2 and len(bodies) == 4
    for event in truth:
        assert [b for b in bodies if b["id"] == event["event"]["id"]] == [event["event"]] * 2
        assert event["duplicated"] and len(event["due"]) == 2 and len(event["delivered"]) == 2


def test_a_lost_event_never_arrives_and_truth_says_so(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none", **_delivery(loss_probability=1))
    listener = Listener(emu)
    ids = launch(ec2, 3)
    ec2.terminate_instances(InstanceIds=ids)
    clock.advance(60)
    assert listener.drain() == []
    truth = emu.events()
    assert len(truth) == 12  # pending, running, shutting-down, terminated: all emitted
    assert all(e["lost"] and e["due"] == [] and e["delivered"] == [] for e in truth)


def test_reordered_events_arrive_behind_later_ones_in_due_order(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator(
        "none", seed=3, **_delivery(reorder_probability=0.5, reorder_delay=FIXED_10)
    )
    listener = Listener(emu)
    ids = launch(ec2, 4)
    clock.advance(1)
    ec2.terminate_instances(InstanceIds=ids)
    clock.advance(20)
    bodies = listener.drain()
    truth = emu.events()
    held = [e for e in truth if e["reordered"]]
    on_time = [e for e in truth if not e["reordered"]]
    assert held and on_time
    assert all(e["due"] == [e["emitted_at"] + 10] for e in held)
    # Each instance's pending event held back arrives after its own shutting-down.
    order = [b["id"] for b in bodies]
    assert order == [e["event"]["id"] for e in sorted(truth, key=lambda e: e["due"][0])]
    overtaken = [
        e
        for e in held
        if any(o["emitted_at"] > e["emitted_at"] for o in on_time)
        and order.index(e["event"]["id"])
        > min(order.index(o["event"]["id"]) for o in on_time if o["emitted_at"] > e["emitted_at"])
    ]
    assert overtaken


def test_fault_draws_are_seeded(fake_emulator: FakeEmulator) -> None:
    def run() -> list[tuple[bool, bool, bool, list[float]]]:
        emu, clock, ec2 = fake_emulator(
            "realistic",
            seed=11,
            **_delivery(
                delay={"median": 1, "p99": 5, "max": 9},
                duplicate_probability=0.3,
                reorder_probability=0.3,
                loss_probability=0.3,
            ),
        )
        launch(ec2, 10)
        return [(e["lost"], e["duplicated"], e["reordered"], e["due"]) for e in emu.events()]

    first = run()
    assert first == run()
    assert any(lost for lost, _, _, _ in first) and any(dup for _, dup, _, _ in first)


def test_a_long_run_keeps_the_latest_events_and_exact_counts() -> None:
    feed = EventFeed(Delivery(loss_probability=0.5), "us-east-1", "1", random.Random(1), keep=3)
    for n in range(10):
        feed.emit(DetailType.REBALANCE, f"i-{n}", {"instance-id": f"i-{n}"}, float(n), listed=True)
    assert [e.instance_id for e in feed.records] == ["i-7", "i-8", "i-9"]
    summary = feed.summary()
    assert summary["total"] == summary["by_type"]["EC2 Instance Rebalance Recommendation"] == 10
    delivered = len(feed.due(100.0))
    assert 0 < summary["lost"] < 10 and delivered == 10 - summary["lost"]
