"""How CreateFleet instant chooses its pools: EC2's allocation strategies, as the order in
which the pools of a request are tried.

Each strategy picks the next pool from those not tried yet, knowing how many instances are
still wanted, each pool's price and its depth (the instances it could still give; infinite
when unlimited, 0 when out of capacity):

- spot ``price-capacity-optimized``: among the deepest pools (those that can give what is
  still wanted, else the deepest there is), the cheapest;
- spot ``capacity-optimized``: the deepest (``-prioritized``: then the override priority);
- ``lowest-price`` (spot or on-demand): the cheapest;
- on-demand ``prioritized``: the lowest override priority (the overrides' order breaks ties
  and ranks overrides without one last);
- spot ``diversified``: every pool in turn, each asked for an equal share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SPOT_STRATEGIES = (
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
    "diversified",
)
ON_DEMAND_STRATEGIES = ("lowest-price", "prioritized")
DEFAULT_STRATEGY = {"spot": "price-capacity-optimized", "on-demand": "lowest-price"}


@dataclass(frozen=True)
class Offer:
    """One override of a fleet request: a pool it may launch into."""

    index: int  # the override's position in the request
    instance_type: str
    availability_zone: str
    subnet_id: str | None = None
    priority: float | None = None

    @property
    def rank(self) -> tuple[float, int]:
        """Order for ``prioritized``: the priority (none: last), then the position."""
        return (math.inf if self.priority is None else self.priority, self.index)


PoolMeasure = Callable[[Offer], float]


def check_strategy(market: str, strategy: str) -> str | None:
    """Why ``strategy`` cannot allocate ``market``; None when it can."""
    known = SPOT_STRATEGIES if market == "spot" else ON_DEMAND_STRATEGIES
    if market not in DEFAULT_STRATEGY:
        return f"market {market!r} must be 'spot' or 'on-demand'"
    if strategy not in known:
        return f"{market} allocation strategy {strategy!r} is not one of {', '.join(known)}"
    return None


def choose(
    candidates: Sequence[Offer],
    strategy: str,
    remaining: int,
    price: PoolMeasure,
    depth: PoolMeasure,
) -> Offer:
    """The pool ``strategy`` tries next among ``candidates`` (not empty)."""
    if strategy == "lowest-price":
        return min(candidates, key=lambda o: (price(o), o.index))
    if strategy == "prioritized":
        return min(candidates, key=lambda o: o.rank)
    if strategy == "capacity-optimized":
        return min(candidates, key=lambda o: (-depth(o), o.index))
    if strategy == "capacity-optimized-prioritized":
        return min(candidates, key=lambda o: (-depth(o), *o.rank))
    if strategy == "diversified":
        return min(candidates, key=lambda o: o.index)
    # price-capacity-optimized
    deepest = max(depth(o) for o in candidates)
    enough = min(float(remaining), deepest)
    deep = [o for o in candidates if depth(o) >= enough]
    return min(deep, key=lambda o: (price(o), o.index))


def share(strategy: str, remaining: int, candidates_left: int) -> int:
    """How many instances to ask of the chosen pool: an equal share when diversified,
    else all that is still wanted."""
    if strategy == "diversified":
        return max(1, math.ceil(remaining / max(1, candidates_left)))
    return remaining
