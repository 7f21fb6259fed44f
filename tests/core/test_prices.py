"""The on-demand price table the emulator and the client share."""

from __future__ import annotations

import pytest

from steadyscale.core.prices import ON_DEMAND_USD_PER_HOUR, on_demand_price


@pytest.mark.parametrize(
    ("instance_type", "price"),
    [
        ("m5.large", 0.096),
        ("m5.xlarge", 0.192),
        ("m5.2xlarge", 0.384),
        ("c5.large", 0.085),
        ("c5.9xlarge", 1.53),
        ("r5.large", 0.126),
        ("m6i.32xlarge", 6.144),
        ("m7i.large", 0.1008),
        ("c7i.48xlarge", 8.568),
        ("t3.micro", 0.0104),
        ("g4dn.xlarge", 0.526),
        ("g5.xlarge", 1.006),
        ("p3.2xlarge", 3.06),
        ("m1.small", 0.044),
    ],
)
def test_listed_prices_are_aws_us_east_1_on_demand(instance_type: str, price: float) -> None:
    assert on_demand_price(instance_type) == pytest.approx(price)


def test_an_unlisted_type_has_no_price_rather_than_a_guess() -> None:
    assert on_demand_price("m5.huge") is None
    assert on_demand_price("") is None


def test_every_type_the_project_uses_is_listed() -> None:
    for instance_type in ("m5.large", "m5.xlarge", "m5.2xlarge", "c5.large", "g4dn.xlarge"):
        assert instance_type in ON_DEMAND_USD_PER_HOUR
    assert all(price > 0 for price in ON_DEMAND_USD_PER_HOUR.values())
