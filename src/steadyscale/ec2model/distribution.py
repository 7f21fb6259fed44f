"""A delay distribution of the emulator's knobs (log-normal by median and 99th percentile,
capped), and the strict base model every knob is written in."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field, model_validator

# z-score of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263478740408408


class Strict(BaseModel):
    """A knob: unknown keys refused, frozen, finite numbers only."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Distribution(Strict):
    """A delay in seconds: log-normal with the given median and 99th percentile, capped at max.

    ``median == 0`` (with p99 and max 0) means "no delay".
    """

    median: float = Field(ge=0, description="Median delay, seconds.")
    p99: float = Field(ge=0, description="99th percentile, seconds.")
    max: float = Field(ge=0, description="Largest delay, seconds.")

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        if self.median == 0:
            if self.p99 != 0 or self.max != 0:
                raise ValueError("median is 0 (no delay), so p99 and max must be 0 too")
            return self
        if self.p99 < self.median:
            raise ValueError(f"p99 ({self.p99}) must be >= median ({self.median})")
        if self.max < self.median:
            raise ValueError(f"max ({self.max}) must be >= median ({self.median})")
        return self

    @classmethod
    def zero(cls) -> Distribution:
        return cls(median=0, p99=0, max=0)

    @property
    def is_zero(self) -> bool:
        return self.max == 0

    def sample(self, rng: random.Random) -> float:
        """One draw; consumes exactly one gaussian from ``rng`` so streams stay aligned."""
        gauss = rng.gauss(0.0, 1.0)
        if self.is_zero:
            return 0.0
        sigma = math.log(self.p99 / self.median) / _Z99
        return min(self.max, self.median * math.exp(sigma * gauss))
