"""Token buckets: burst, refill, never negative."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyscale.retries.tokenbucket import TokenBucket


def test_burst_then_refill() -> None:
    bucket = TokenBucket(capacity=5, refill_per_second=2)
    assert all(bucket.try_take(0.0) for _ in range(5))
    assert not bucket.try_take(0.0)
    assert bucket.seconds_until(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.5)
    assert bucket.available(100.0) == 5  # never above capacity


def test_a_request_larger_than_capacity_waits_forever() -> None:
    bucket = TokenBucket(capacity=5, refill_per_second=2)
    assert not bucket.try_take(0.0, 6)
    assert math.isinf(bucket.seconds_until(0.0, 6))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        TokenBucket(capacity=0, refill_per_second=1)
    with pytest.raises(ValueError, match="refill"):
        TokenBucket(capacity=1, refill_per_second=-1)


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0.1, 5)), max_size=50))
def test_tokens_taken_never_exceed_capacity_plus_refill(steps: list[tuple[float, float]]) -> None:
    bucket = TokenBucket(capacity=10, refill_per_second=3)
    now = 0.0
    taken = 0.0
    for gap, amount in steps:
        now += gap
        if bucket.try_take(now, amount):
            taken += amount
        assert bucket.available(now) >= 0
    assert taken <= 10 + 3 * now + 1e-6
