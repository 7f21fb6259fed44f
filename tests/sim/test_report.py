"""The report's figures from hand-made ticks: time to capacity after each rise, calls per
minute."""

from __future__ import annotations

from steadyscale.loop.autoscaler import TickReport
from steadyscale.sim.plot import calls_per_minute
from steadyscale.sim.report import CapacityRise, Sample, capacity_after_each_rise


def _ticks(*ticks: tuple[float, int, bool]) -> tuple[list[Sample], list[TickReport]]:
    """(seconds since the start, bundles demanded, capacity met) per tick of 1 s."""
    samples = [Sample(at=at, demand=demand, counts={}) for at, demand, _ in ticks]
    reports = [TickReport(started_at=at, duration=1.0, capacity_met=met) for at, _, met in ticks]
    return samples, reports


def test_a_rise_is_met_at_the_end_of_the_tick_that_saw_it() -> None:
    samples, reports = _ticks((0, 4, False), (5, 4, False), (10, 4, True))
    assert capacity_after_each_rise(samples, reports) == [
        CapacityRise(at_seconds=0, demand=4, seconds=11.0)
    ]


def test_a_rise_overtaken_by_a_higher_one_is_met_when_that_one_is() -> None:
    samples, reports = _ticks((0, 4, False), (5, 8, False), (10, 8, True))
    assert [r.seconds for r in capacity_after_each_rise(samples, reports)] == [11.0, 6.0]


def test_a_rise_the_demand_fell_back_from_is_never_met() -> None:
    samples, reports = _ticks((0, 4, True), (5, 9, False), (10, 4, True), (15, 4, True))
    rises = capacity_after_each_rise(samples, reports)
    assert [(r.demand, r.seconds) for r in rises] == [(4, 1.0), (9, None)]


def test_calls_count_in_their_minute_and_late_ones_in_the_last() -> None:
    calls = [(0.0, "RunInstances"), (59.9, "RunInstances"), (60.0, "DescribeInstances")]
    calls.append((500.0, "DescribeInstances"))
    assert calls_per_minute(calls, span=2) == {
        "RunInstances": [2, 0],
        "DescribeInstances": [0, 2],
    }
