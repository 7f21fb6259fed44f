"""Ray's own StandardAutoscaler driving steadyscale.ray.EC2NodeProvider against the emulator
(realistic profile, its time scaled down): 0 -> 100 -> 0 workers with no error in any
update, no duplicate and no leak by the emulator's ground truth.

Ray reads wall time, so these run on the emulator's scaled clock rather than a fake one;
node updaters are disabled, so no command runs anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steadyscale.emulator import Emulator
from steadyscale.testing.ray_harness import Outcome, RayScenario, start_emulator
from steadyscale.testing.ray_lost_state import LOSSES, LostStateScenario

WORKERS = 100
TIME_SCALE = 0.05


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Any]:
    started: list[Emulator] = []

    def run(workers: int = WORKERS, restart: bool = False, **overrides: Any) -> Outcome:
        emulator = start_emulator("realistic", time_scale=TIME_SCALE, seed=7, **overrides)
        started.append(emulator)
        scenario = RayScenario("steadyscale", emulator=emulator, state_dir=tmp_path)
        return scenario.run(workers, restart=restart)

    yield run
    for emulator in started:
        emulator.stop()


def assert_clean(outcome: Outcome) -> None:
    assert outcome.update_errors == 0, outcome.error_samples
    assert outcome.seconds_to_target is not None, "never reached the target"
    assert outcome.launched == WORKERS and outcome.duplicates == 0
    assert outcome.peak_alive == WORKERS
    assert outcome.leaks == 0


def test_ray_scales_to_100_and_back_under_the_realistic_profile(scenario: Any) -> None:
    outcome = scenario()

    assert_clean(outcome)
    assert outcome.api_calls["RunInstances"] >= WORKERS // 5  # Ray's batches of 5


def test_ray_scales_to_100_and_back_while_the_listing_flickers(scenario: Any) -> None:
    outcome = scenario(stale_reads={"probability": 0.3, "listing_flicker_probability": 0.3})

    assert_clean(outcome)


def test_ray_scales_to_100_and_back_under_tight_throttling(scenario: Any) -> None:
    # EC2's buckets at 20 %: RunInstances 1 burst, 0.4 per second, so Ray's parallel
    # launchers outrun it and EC2 answers RequestLimitExceeded.
    outcome = scenario(throttling={"enabled": True, "scale": 0.2})

    assert_clean(outcome)
    assert outcome.throttled > 0, "the scenario should have met EC2's limits"


def test_a_restart_of_ray_while_its_launches_are_invisible_launches_nothing_twice(
    scenario: Any,
) -> None:
    lag = {"median": 100, "p99": 100, "max": 100}  # 5 real seconds at this time scale

    outcome = scenario(workers=20, restart=True, visibility=lag)

    assert outcome.invisible_at_restart == 20, "the restart should come before EC2 shows them"
    assert outcome.update_errors == 0, outcome.error_samples
    assert outcome.launched == 20 and outcome.duplicates == 0 and outcome.leaks == 0


@pytest.mark.parametrize("how", LOSSES)
def test_a_lost_state_file_makes_ray_drop_relaunch_or_terminate_no_live_node(
    tmp_path: Path, how: str
) -> None:
    lag = {"median": 100, "p99": 100, "max": 100}  # 5 real seconds at this time scale
    emulator = start_emulator("realistic", time_scale=TIME_SCALE, seed=7, visibility=lag)
    try:
        scenario = LostStateScenario(
            how=how, emulator=emulator, state_dir=tmp_path, hold_seconds=150
        )
        outcome = scenario.run_losing_state(running=10, invisible=10)
    finally:
        emulator.stop()

    assert outcome.running_at_loss == 10
    assert outcome.hidden_at_loss == 10, "the loss should come before EC2 shows them"
    assert outcome.update_errors == 0, outcome.error_samples
    assert outcome.terminated_at_loss == 0
    assert outcome.seconds_to_target is not None, "never reached the target"
    assert outcome.launched == 20 and outcome.duplicates == 0 and outcome.leaks == 0
