"""Clocks: the fake one records sleeps; the scaled one divides real time."""

from __future__ import annotations

import time

import pytest

from steadyscale.retries.clock import FakeClock, ScaledClock


def test_fake_clock_advances_only_when_told() -> None:
    clock = FakeClock(start=5)
    clock.sleep(2)
    clock.advance(1)
    assert clock.now() == 8
    assert clock.sleeps == [2]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_scaled_clock_runs_faster_than_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    real = [100.0]
    slept: list[float] = []
    monkeypatch.setattr(time, "monotonic", lambda: real[0])
    monkeypatch.setattr(time, "sleep", slept.append)
    clock = ScaledClock(time_scale=0.1)
    real[0] += 3.0
    assert clock.now() == pytest.approx(30.0)
    clock.sleep(30.0)
    assert slept == [pytest.approx(3.0)]
    with pytest.raises(ValueError):
        ScaledClock(time_scale=0)
