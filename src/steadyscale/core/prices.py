"""On-demand prices of EC2 instance types: USD per hour, Linux, us-east-1, as AWS lists
them. One table that the emulator's model (the price of an on-demand pool, and the ceiling
of its spot prices) and the client (a node's cost when it launches on demand) both read, so
a cost computed by the autoscaler and one read from the emulator's ground truth agree.

Pure data: a type the table does not know has no price (``None``), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

# A general-purpose family's price is proportional to its vCPUs; the GPU families are
# listed size by size (their accelerators do not double with the size).


def _doubling(large: float, sizes: Mapping[str, float]) -> dict[str, float]:
    """A family whose price is proportional to its vCPUs: ``large`` for 2 vCPUs, and
    ``sizes`` mapping each size to its multiple of ``large``."""
    return {size: round(large * factor, 5) for size, factor in sizes.items()}


_SCALE = {
    "large": 1,
    "xlarge": 2,
    "2xlarge": 4,
    "4xlarge": 8,
    "8xlarge": 16,
    "12xlarge": 24,
    "16xlarge": 32,
    "24xlarge": 48,
}
_SCALE_32 = {**_SCALE, "32xlarge": 64}
_SCALE_48 = {**_SCALE, "48xlarge": 96}
_SCALE_C5 = {
    "large": 1,
    "xlarge": 2,
    "2xlarge": 4,
    "4xlarge": 8,
    "9xlarge": 18,
    "12xlarge": 24,
    "18xlarge": 36,
    "24xlarge": 48,
}

_FAMILIES: dict[str, dict[str, float]] = {
    "m5": _doubling(0.096, _SCALE),
    "m6i": _doubling(0.096, _SCALE_32),
    "m7i": _doubling(0.1008, _SCALE_48),
    "c5": _doubling(0.085, _SCALE_C5),
    "c6i": _doubling(0.085, _SCALE_32),
    "c7i": _doubling(0.08925, _SCALE_48),
    "r5": _doubling(0.126, _SCALE),
    "r6i": _doubling(0.126, _SCALE_32),
    "t3": {
        "nano": 0.0052,
        "micro": 0.0104,
        "small": 0.0208,
        "medium": 0.0416,
        "large": 0.0832,
        "xlarge": 0.1664,
        "2xlarge": 0.3328,
    },
    "g4dn": {
        "xlarge": 0.526,
        "2xlarge": 0.752,
        "4xlarge": 1.204,
        "8xlarge": 2.176,
        "12xlarge": 3.912,
        "16xlarge": 4.352,
    },
    "g5": {
        "xlarge": 1.006,
        "2xlarge": 1.212,
        "4xlarge": 1.624,
        "8xlarge": 2.448,
        "12xlarge": 5.672,
        "16xlarge": 4.096,
        "24xlarge": 8.144,
        "48xlarge": 16.288,
    },
    "p3": {"2xlarge": 3.06, "8xlarge": 12.24, "16xlarge": 24.48},
    # A previous generation still used by moto's defaults and some of our tests.
    "m1": {"small": 0.044, "medium": 0.087, "large": 0.175, "xlarge": 0.35},
}

ON_DEMAND_USD_PER_HOUR: Mapping[str, float] = {
    f"{family}.{size}": price
    for family, sizes in _FAMILIES.items()
    for size, price in sizes.items()
}


def on_demand_price(instance_type: str) -> float | None:
    """The on-demand price of ``instance_type`` in USD per hour, or None if not listed."""
    return ON_DEMAND_USD_PER_HOUR.get(instance_type)
