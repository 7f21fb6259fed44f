"""Backoff with full jitter, and a retry loop bounded by a deadline, on a fake clock."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyscale.retries.backoff import Backoff, full_jitter, retry_until
from steadyscale.retries.clock import FakeClock


@given(st.integers(0, 100), st.floats(0, 0.999999))
def test_full_jitter_stays_below_the_capped_exponential(attempt: int, draw: float) -> None:
    delay = full_jitter(attempt, base=0.2, cap=2.0, draw=draw)
    assert 0 <= delay < min(2.0, 0.2 * 2 ** min(attempt, 62)) + 1e-12


def test_full_jitter_is_a_pure_function() -> None:
    assert full_jitter(3, base=0.5, cap=10, draw=0.5) == 2.0
    assert full_jitter(10, base=0.5, cap=10, draw=0.5) == 5.0
    with pytest.raises(ValueError):
        full_jitter(-1, base=1, cap=1, draw=0)


def test_retry_returns_as_soon_as_something_is_found() -> None:
    clock = FakeClock()
    answers = iter([None, None, "found"])
    result, attempts = retry_until(
        lambda: next(answers),
        clock=clock,
        deadline_seconds=5,
        backoff=Backoff(),
        rng=random.Random(1),
    )
    assert (result, attempts) == ("found", 3)
    assert len(clock.sleeps) == 2


def test_retry_gives_up_at_the_deadline_without_sleeping_past_it() -> None:
    clock = FakeClock()
    result, attempts = retry_until(
        lambda: None,
        clock=clock,
        deadline_seconds=5,
        backoff=Backoff(base=0.2, cap=2.0),
        rng=random.Random(2),
    )
    assert result is None
    assert attempts > 3
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert all(s <= 2.0 for s in clock.sleeps)
