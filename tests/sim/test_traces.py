"""The simulator's durations and its diurnal trace: days are a unit, and a run longer than a
day repeats the day's curve in real hours instead of stretching it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steadyscale.app.cli import main
from steadyscale.errors import ConfigError
from steadyscale.sim import builtin_trace, parse_duration

HOUR, DAY = 3600.0, 86400.0
BUNDLE = {"CPU": 2.0}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * DAY),
        ("1.5d", 1.5 * DAY),
        (" 2 d ", 2 * DAY),
        ("366d", 366 * DAY),
        ("90m", 5400.0),
        ("1h", HOUR),
        ("3600", HOUR),
        ("45s", 45.0),
    ],
)
def test_durations_take_seconds_minutes_hours_and_days(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7x", "d", "0d", "-1d", "1e3d", "1d2h", "nan", "inf", ""])
def test_a_duration_that_is_not_one_positive_time_is_refused(text: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_duration(text)
    assert str(refused.value) == (
        f"--duration {text!r}: give a positive time such as 3600, 90m, 1h or 7d"
    )


@pytest.mark.parametrize("text", ["367d", "9000h", "1" * 400])
def test_a_duration_beyond_a_year_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"give at most 366d of virtual time$"):
        parse_duration(text)


def _diurnal(duration: float, peak: int = 100) -> list[tuple[float, int]]:
    trace = builtin_trace("diurnal", peak=peak, duration=duration, bundle=BUNDLE, seed=0)
    return [(step.at, step.bundles) for step in trace.steps]


def test_a_diurnal_trace_over_days_repeats_the_day_hour_by_hour() -> None:
    one_day = _diurnal(DAY)
    three_days = _diurnal(3 * DAY)
    assert [at for at, _ in three_days] == [HOUR * hour for hour in range(72)]
    for day in range(3):
        today = three_days[24 * day : 24 * (day + 1)]
        assert [(at - day * DAY, bundles) for at, bundles in today] == one_day
    levels = [bundles for _, bundles in one_day]
    assert levels[0] == 0 and levels[12] == 100 == max(levels)  # night low, midday peak


def test_a_part_day_at_the_end_follows_the_curve_up_to_the_end() -> None:
    steps = _diurnal(DAY + 6.5 * HOUR)
    assert len(steps) == 31 and steps[-1][0] == DAY + 6 * HOUR
    assert steps[24:] == [(at + DAY, bundles) for at, bundles in _diurnal(DAY)[:7]]


@pytest.mark.parametrize("duration", [600.0, 2400.0, 7777.7, DAY])
def test_a_day_or_less_squeezes_the_whole_curve_into_the_duration(duration: float) -> None:
    steps = _diurnal(duration)
    assert [at for at, _ in steps] == [duration * hour / 24 for hour in range(24)]
    assert [bundles for _, bundles in steps] == [bundles for _, bundles in _diurnal(DAY)]


CONFIG = """
cluster_name: sim
max_workers: 4
loop_interval_seconds: 120
provider: {type: memory}
available_node_types:
  cpu:
    node_config: {InstanceType: m5.large, ImageId: ami-12345678}
    resources: {CPU: 2}
    max_workers: 4
"""


def test_simulate_over_two_days_meets_the_same_rises_each_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    argv = ["simulate", "--config", str(config), "--trace", "diurnal", "--duration", "2d"]
    assert main([*argv, "--report-dir", str(tmp_path / "out"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duration_seconds"] == 2 * DAY
    rises = [(r["at_seconds"], r["demand"]) for r in report["capacity_after_each_rise"]]
    first_day = [(at, demand) for at, demand in rises if at < DAY]
    assert [demand for _, demand in first_day] == [1, 2, 3, 4]
    assert rises == first_day + [(at + DAY, demand) for at, demand in first_day]


def test_simulate_refuses_a_nonsense_duration_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    for duration in ("7x", "400d"):
        code = main(
            ["simulate", "--config", str(config), "--trace", "diurnal", "--duration", duration]
        )
        err = capsys.readouterr().err
        assert code == 2 and f"--duration {duration!r}: give " in err and err.count("\n") == 1
