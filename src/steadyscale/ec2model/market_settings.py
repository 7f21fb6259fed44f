"""The emulator's market knobs: spot prices (a seeded random walk under the on-demand
price, per instance type and AZ) and how long EC2 takes to show a launch template."""

from __future__ import annotations

from pydantic import Field, field_validator

from steadyscale.ec2model.distribution import Distribution
from steadyscale.ec2model.distribution import Strict as _Strict


class Market(_Strict):
    """Spot prices (a seeded random walk under the on-demand price, per type and AZ) and
    launch templates, which EC2 shows a while after they are made."""

    spot_price_ratio: tuple[float, float] = Field(
        default=(0.25, 0.6),
        description="Range a pool's first spot price is drawn from, as fractions of the "
        "on-demand price.",
    )
    spot_price_step_seconds: float = Field(
        default=300.0, gt=0, description="How often spot prices move."
    )
    spot_price_volatility: float = Field(
        default=0.05, ge=0, description="Standard deviation of the log of each price step."
    )
    launch_template_visibility: Distribution = Field(
        default=Distribution.zero(),
        description="Delay after a launch template (or version) is made until EC2 shows it.",
    )

    @field_validator("spot_price_ratio")
    @classmethod
    def _check_ratio(cls, ratio: tuple[float, float]) -> tuple[float, float]:
        if not 0 < ratio[0] <= ratio[1] <= 1:
            raise ValueError("spot_price_ratio must be [low, high] with 0 < low <= high <= 1")
        return ratio
