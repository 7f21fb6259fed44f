"""Resource bundles: NAME=AMOUNT pairs are read in one place, each name once."""

from __future__ import annotations

import pytest

from steadyscale.core.resources import RepeatedName, parse_amounts


@pytest.mark.parametrize(
    ("text", "separators", "name"),
    [
        ("CPU=2,CPU=4", ",", "CPU"),
        ("CPU=2, GPU=1, CPU =2", ",", "CPU"),
        ("GPU=1;CPU=2,GPU=1", ";,", "GPU"),
    ],
)
def test_a_name_given_twice_is_refused_whatever_the_amounts(
    text: str, separators: str, name: str
) -> None:
    with pytest.raises(RepeatedName) as refused:
        parse_amounts(text, separators)
    assert refused.value.name == name
    assert str(refused.value) == f"{name} is given twice"


def test_names_differ_by_case() -> None:
    assert parse_amounts("cpu=1,CPU=2") == {"cpu": 1, "CPU": 2}
