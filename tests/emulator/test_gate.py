"""The gate every EC2 call passes, on its own: throttling first, then a fault; a server
error refuses the call, a lost response or a timeout hides the answer of a call done."""

from __future__ import annotations

import re
import tracemalloc
from typing import Any

import pytest

from steadyscale.ec2model.gate import MAX_INJECTED_CALLS, THROTTLED, CallGate, Draw, Fault
from steadyscale.ec2model.settings import build_settings


def _gate(seed: str = "0/us-east-1", **overrides: Any) -> CallGate:
    return CallGate(build_settings(profile="none", overrides=overrides), seed)


def test_a_throttled_call_is_refused_before_any_fault_is_drawn() -> None:
    gate = _gate(
        throttling={"enabled": True, "request_buckets": {"RunInstances": _bucket(1)}},
    )
    assert gate.draw("RunInstances", 0.0) == Draw()  # takes the only token
    gate.inject(Fault.SERVER_ERROR, "RunInstances")
    throttled = gate.draw("RunInstances", 0.0)
    assert throttled == Draw(refusal=THROTTLED) and throttled.hidden() is None
    # A throttled call draws no fault: the injected one waits for the next call.
    assert gate.draw_fault("RunInstances") is Fault.SERVER_ERROR


def _bucket(capacity: float) -> dict[str, float]:
    return {"capacity": capacity, "refill_per_second": 0.0}


def test_a_server_error_refuses_the_call_with_internal_error_or_unavailable() -> None:
    gate = _gate(errors={"server_error_probability": 1.0})
    refusals = {gate.draw("DescribeInstances", 0.0).refusal for _ in range(50)}
    assert {(r.code, r.status, r.fault) for r in refusals if r is not None} == {
        ("InternalError", 500, Fault.SERVER_ERROR),
        ("Unavailable", 503, Fault.SERVER_ERROR),
    }


def test_lost_responses_and_timeouts_let_the_call_through_and_hide_its_answer() -> None:
    gate = _gate()
    gate.inject(Fault.LOST_RESPONSE, "RunInstances")
    gate.inject(Fault.TIMEOUT, "RunInstances")
    lost, timed_out, clean = (gate.draw("RunInstances", 0.0) for _ in range(3))
    assert lost.refusal is None and timed_out.refusal is None and clean == Draw()
    hidden_lost, hidden_timeout = lost.hidden(), timed_out.hidden()
    assert hidden_lost is not None and (hidden_lost.code, hidden_lost.status) == (
        "InternalError",
        500,
    )
    assert hidden_timeout is not None and (hidden_timeout.code, hidden_timeout.status) == (
        "timeout",
        0,
    )
    assert clean.hidden() is None


def test_the_same_seed_draws_the_same_fates() -> None:
    errors = {
        "server_error_probability": 0.2,
        "lost_response_probability": 0.2,
        "timeout_probability": 0.1,
    }

    def fates(seed: str) -> list[Draw]:
        gate = _gate(seed, errors=errors)
        return [gate.draw("DescribeInstances", float(n)) for n in range(200)]

    assert fates("7/us-east-1") == fates("7/us-east-1")
    assert fates("7/us-east-1") != fates("7/eu-west-1")


def test_the_launch_bucket_caps_what_a_launch_may_start_and_is_charged_for_it() -> None:
    gate = _gate(
        throttling={"enabled": True, "resource_buckets": {"RunInstances": _bucket(10)}},
    )
    assert gate.resource_budget("RunInstances", 0.0) == 10
    gate.consume_resources("RunInstances", 7, 0.0)
    assert gate.resource_budget("RunInstances", 0.0) == 3
    assert _gate().resource_budget("RunInstances", 0.0) is None  # throttling off


def test_injected_faults_hit_the_next_calls_of_their_action_in_the_order_injected() -> None:
    gate = _gate()
    gate.inject(Fault.TIMEOUT, "RunInstances", count=2)
    gate.inject(Fault.SERVER_ERROR, "*", count=2)
    gate.inject(Fault.LOST_RESPONSE, "RunInstances")
    assert [gate.draw_fault("DescribeInstances") for _ in range(2)] == [Fault.SERVER_ERROR] * 2
    assert [gate.draw_fault("RunInstances") for _ in range(4)] == [
        Fault.TIMEOUT,
        Fault.TIMEOUT,
        Fault.LOST_RESPONSE,
        None,
    ]
    assert gate.draw_fault("DescribeInstances") is None


def test_an_injection_costs_the_same_memory_whatever_its_count() -> None:
    def allocated(count: int) -> int:
        gate = _gate()
        tracemalloc.start()
        try:
            gate.inject(Fault.TIMEOUT, "RunInstances", count=count)
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    allocated(1)  # EC2's action names, loaded once
    assert allocated(MAX_INJECTED_CALLS) <= allocated(1) + 1024


@pytest.mark.parametrize(
    ("action", "count", "expected"),
    [
        (
            "RunInstance",
            1,
            "action 'RunInstance' is not an EC2 action (did you mean RunInstances?)",
        ),
        ("run_instances", 1, "action 'run_instances' is not an EC2 action"),
        ("RunInstances", 0, f"count must be from 1 to {MAX_INJECTED_CALLS}, got 0"),
        ("*", -1, f"count must be from 1 to {MAX_INJECTED_CALLS}, got -1"),
        ("*", MAX_INJECTED_CALLS + 1, f"count must be from 1 to {MAX_INJECTED_CALLS}, got "),
    ],
)
def test_an_injection_no_call_would_meet_is_refused(action: str, count: int, expected: str) -> None:
    gate = _gate()
    with pytest.raises(ValueError, match=re.escape(expected)):
        gate.inject(Fault.TIMEOUT, action, count)
    assert gate.draw_fault("RunInstances") is None
