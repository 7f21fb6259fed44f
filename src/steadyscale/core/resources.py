"""Resource bundles: what demand asks for and what a node offers, and how they fit.

A bundle is a mapping of resource names to amounts (``{CPU: 4, GPU: 1}``). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Smallest non-zero resource amount: keeps packing arithmetic finite.
MIN_AMOUNT = 1e-6
# More bundles than any cluster holds (and than SQLite's integers carry): a typo.
MAX_BUNDLES = 10_000_000


def amounts_or_error(value: dict[str, float], empty: str) -> dict[str, float]:
    """Resource amounts: at least one, none negative."""
    if not value:
        raise ValueError(empty)
    for name, amount in value.items():
        if amount < 0 or 0 < amount < MIN_AMOUNT:
            raise ValueError(
                f"{name} must be 0 or between {MIN_AMOUNT:g} and any finite amount, got {amount}"
            )
    return value


class DemandItem(_Strict):
    bundle: dict[str, float] = Field(description="Resources of one bundle, e.g. `{CPU: 2}`.")
    count: int = Field(ge=0, le=MAX_BUNDLES, description="How many such bundles.")

    @field_validator("bundle")
    @classmethod
    def _bundle(cls, value: dict[str, float]) -> dict[str, float]:
        return amounts_or_error(value, "a bundle needs at least one resource, for example {CPU: 1}")


class RepeatedName(ValueError):  # noqa: N818 - the name says what is wrong
    """A list of NAME=AMOUNT pairs names ``name`` twice: which amount was meant is unknown."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"{name} is given twice")


def parse_amounts(text: str, separators: str = ",") -> dict[str, float]:
    """``CPU=4,GPU=1`` as {CPU: 4, GPU: 1}: NAME=AMOUNT pairs, each amount a finite number
    >= 0, each name once. Raises RepeatedName for a name given twice, else ValueError whose
    message is the pair that is wrong, quoted; callers say what they expected."""
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    amounts: dict[str, float] = {}
    for part in text.split(separators[0]):
        name, sep, value = part.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or amount < 0 or not math.isfinite(amount):
            raise ValueError(repr(part))
        if name.strip() in amounts:
            raise RepeatedName(name.strip())
        amounts[name.strip()] = amount
    return amounts


def fits(bundle: Mapping[str, float], resources: Mapping[str, float]) -> bool:
    return all(resources.get(name, 0.0) + 1e-9 >= amount for name, amount in bundle.items())


def format_bundle(bundle: dict[str, float]) -> str:
    inner = ", ".join(f"{k}: {v:g}" for k, v in sorted(bundle.items()))
    return "{" + inner + "}"
