"""Settings: distributions, profiles, layering, and one clear error per bad value."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyscale.ec2model.distribution import Distribution
from steadyscale.ec2model.settings import (
    PROFILES,
    Operation,
    build_settings,
    parse_assignment,
)
from steadyscale.errors import ConfigError


def test_distribution_hits_its_median_and_p99() -> None:
    dist = Distribution(median=2, p99=30, max=120)
    rng = random.Random(1)
    draws = sorted(dist.sample(rng) for _ in range(20_000))
    assert draws[len(draws) // 2] == pytest.approx(2, rel=0.08)
    assert draws[int(len(draws) * 0.99)] == pytest.approx(30, rel=0.15)
    assert max(draws) <= 120


@given(
    median=st.floats(0.01, 100),
    spread=st.floats(1, 50),
    cap=st.floats(1, 10),
    seed=st.integers(0, 2**32),
)
def test_distribution_draws_stay_between_zero_and_max(
    median: float, spread: float, cap: float, seed: int
) -> None:
    dist = Distribution(median=median, p99=median * spread, max=median * cap)
    value = dist.sample(random.Random(seed))
    assert 0 < value <= dist.max


def test_zero_distribution_never_delays() -> None:
    assert Distribution.zero().sample(random.Random(0)) == 0.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"median": 5, "p99": 1, "max": 10}, "p99 (1.0) must be >= median (5.0)"),
        ({"median": 5, "p99": 10, "max": 1}, "max (1.0) must be >= median (5.0)"),
        ({"median": 0, "p99": 10, "max": 10}, "median is 0"),
    ],
)
def test_bad_distribution_names_its_key(values: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings(overrides={"visibility": values})
    assert str(caught.value).startswith("visibility: ")
    assert message in str(caught.value)


def test_every_profile_builds() -> None:
    for name in PROFILES:
        assert build_settings(profile=name).profile == name


def test_profile_none_has_no_faults() -> None:
    settings = build_settings(profile="none")
    assert settings.visibility.is_zero and settings.boot.is_zero
    assert not settings.throttling.enabled
    assert settings.errors.server_error_probability == 0


def test_realistic_profile_matches_the_documented_lag() -> None:
    settings = build_settings(profile="realistic")
    assert settings.visibility == Distribution(median=2, p99=30, max=120)
    assert settings.throttling.enabled
    assert settings.throttling.request_buckets["RunInstances"].capacity == 5


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'wild'"):
        build_settings(profile="wild")


def test_layers_apply_in_order(tmp_path: Path) -> None:
    file = tmp_path / "emu.yaml"
    file.write_text("profile: harsh\nseed: 3\nvisibility: {median: 1, p99: 2, max: 3}\n")
    settings = build_settings(file=file, assignments=["visibility.max=9", "time_scale=0.5"])
    assert settings.profile == "harsh"
    assert settings.seed == 3
    assert settings.visibility == Distribution(median=1, p99=2, max=9)
    assert settings.time_scale == 0.5
    assert settings.boot.median == 30  # untouched harsh value


def test_per_operation_visibility_overrides_the_default() -> None:
    settings = build_settings(
        overrides={
            "visibility": {"median": 1, "p99": 2, "max": 3},
            "visibility_by_operation": {"terminate": {"median": 5, "p99": 6, "max": 7}},
        }
    )
    assert settings.visibility_for(Operation.TERMINATE).median == 5
    assert settings.visibility_for(Operation.LISTING).median == 1


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("errors.timeout_probability=2", "errors.timeout_probability: "),
        ("throttling.scale=0", "throttling.scale: "),
        ("capacity.pools={m5.large: 3}", "capacity.pools: "),
        (
            "visibility_by_operation.sideways={median: 1, p99: 1, max: 1}",
            "visibility_by_operation.sideways",
        ),
        ("nonsense=1", "nonsense: unknown key"),
        ("seed=abc", "seed: "),
    ],
)
def test_bad_values_name_their_key_path(assignment: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_settings(assignments=[assignment])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_assignment_needs_an_equals_sign() -> None:
    with pytest.raises(ConfigError, match=r"key\.path=value"):
        parse_assignment("seed")
    assert parse_assignment("a.b=1") == {"a": {"b": 1}}


def test_unreadable_and_malformed_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_settings(file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("visibility: [1, 2\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        build_settings(file=bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        build_settings(file=listing)


def test_the_example_settings_file_is_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    settings = build_settings(file=root / "examples" / "emulator-harsh.yaml")
    assert settings.profile == "harsh" and settings.seed == 42
    assert settings.capacity.pools["m5.large/us-east-1a"] == 0


def test_profile_named_in_overrides_is_the_base() -> None:
    settings = build_settings(overrides={"profile": "realistic", "seed": 4})
    assert settings.profile == "realistic"
    assert settings.visibility == Distribution(median=2, p99=30, max=120)
