"""The consistency model on its own: explicit times, no server."""

from __future__ import annotations

from typing import Any

import pytest

from steadyscale.ec2model.gate import Fault
from steadyscale.ec2model.instances import InstanceState
from steadyscale.ec2model.launch import Launch, LaunchRefusedError
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import Operation, build_settings


def _model(profile: str = "none", **overrides: Any) -> RegionModel:
    return RegionModel(build_settings(profile=profile, overrides=overrides), "us-east-1")


def _launch(
    model: RegionModel,
    ids: list[str],
    now: float = 0.0,
    market: str = "on-demand",
    instance_type: str = "m5.large",
    zone: str = "us-east-1a",
) -> None:
    model.register_launch(
        _ask(zone, market, instance_type=instance_type, tags={"cluster": "c1"}), ids, now
    )


def _ask(
    zone: str = "us-east-1a",
    market: str = "on-demand",
    *,
    max_count: int = 1,
    instance_type: str = "m5.large",  # 2 vCPUs
    tags: dict[str, str] | None = None,
) -> Launch:
    return Launch(
        instance_type=instance_type,
        availability_zone=zone,
        market=market,
        min_count=1,
        max_count=max_count,
        tags=tags or {},
    )


def test_visibility_starts_at_the_drawn_moment_for_each_operation() -> None:
    model = _model("realistic")
    _launch(model, ["i-1"], now=100.0)
    inst = model.instances["i-1"]
    for op in Operation:
        at = inst.visible_at[op]
        assert at >= 100.0
        assert not model.visibility.is_visible("i-1", op, at - 1e-6) or at == 100.0
        assert model.visibility.is_visible("i-1", op, at)


def test_ids_the_model_never_saw_are_visible() -> None:
    assert _model("realistic").visibility.is_visible("i-other", Operation.DESCRIBE_BY_ID, 0.0)


def test_boot_and_shutdown_follow_the_lifecycle() -> None:
    model = _model(
        boot={"median": 10, "p99": 10, "max": 10},
        shutdown={"median": 4, "p99": 4, "max": 4},
        terminated_retention_seconds=60,
    )
    _launch(model, ["i-1"])
    assert model.advance(9.9) == []
    [booted] = model.advance(10)
    assert (booted.old_state, booted.new_state) == (InstanceState.PENDING, InstanceState.RUNNING)
    previous, current, change = model.request_terminate("i-1", 20)
    assert (previous, current) == (InstanceState.RUNNING, InstanceState.SHUTTING_DOWN)
    assert change is not None
    assert model.request_terminate("i-1", 21)[2] is None  # idempotent
    [done] = model.advance(24)
    assert done.new_state is InstanceState.TERMINATED
    [gone] = model.advance(84)
    assert gone.new_state is None
    assert "i-1" not in model.instances and "i-1" in model.gone
    assert [state for _, state, _ in model.gone["i-1"].history] == [
        "pending",
        "running",
        "shutting-down",
        "terminated",
        "gone",
    ]


def test_terminating_a_pending_instance_skips_running() -> None:
    model = _model(boot={"median": 10, "p99": 10, "max": 10})
    _launch(model, ["i-1"])
    model.request_terminate("i-1", 1)
    changes = model.advance(100)
    assert InstanceState.RUNNING not in [c.new_state for c in changes]


def test_stale_reads_only_inside_the_window() -> None:
    model = _model(
        boot={"median": 1, "p99": 1, "max": 1},
        stale_reads={"probability": 0.5, "window": {"median": 3, "p99": 3, "max": 3}},
    )
    _launch(model, ["i-1"])
    model.advance(1)
    inside = {model.visibility.observed_state("i-1", 2) for _ in range(100)}
    after = {model.visibility.observed_state("i-1", 4) for _ in range(100)}
    assert inside == {InstanceState.PENDING, InstanceState.RUNNING}
    assert after == {InstanceState.RUNNING}


def test_pool_specific_key_beats_wildcard() -> None:
    model = _model(capacity={"pools": {"m5.large/*": 1, "m5.large/us-east-1b": 5}})
    assert model.admit_launch(_ask("us-east-1a", max_count=10), 0.0) == 1
    assert model.admit_launch(_ask("us-east-1b", max_count=10), 0.0) == 5


def test_spot_pools_are_separate_from_on_demand() -> None:
    model = _model(capacity={"pools": {"*/*/spot": 0}})
    with pytest.raises(LaunchRefusedError) as refused:
        model.admit_launch(_ask(market="spot"), 0.0)
    assert refused.value.code == "InsufficientInstanceCapacity"
    assert model.admit_launch(_ask(market="on-demand"), 0.0) == 1


def test_spot_instances_do_not_count_against_the_on_demand_vcpu_limit() -> None:
    model = _model(capacity={"vcpu_limit": 2})
    _launch(model, ["i-1"], market="spot")
    assert model.admit_launch(_ask(market="on-demand", max_count=5), 0.0) == 1


def test_injected_faults_come_first_and_in_order() -> None:
    model = _model()
    model.gate.inject(Fault.TIMEOUT, "RunInstances")
    model.gate.inject(Fault.SERVER_ERROR, "*")
    assert model.gate.draw_fault("DescribeInstances") is Fault.SERVER_ERROR
    assert model.gate.draw_fault("RunInstances") is Fault.TIMEOUT
    assert model.gate.draw_fault("RunInstances") is None


def test_throttling_off_never_refuses() -> None:
    model = _model()
    assert not any(model.gate.throttle("RunInstances", 0.0, 1000) for _ in range(100))


def test_unknown_actions_fall_into_mutating_or_non_mutating_buckets() -> None:
    model = _model(throttling={"enabled": True})
    assert sum(not model.gate.throttle("DescribeSubnets", 0.0) for _ in range(150)) == 100
    assert sum(not model.gate.throttle("ModifyInstanceAttribute", 0.0) for _ in range(250)) == 200
