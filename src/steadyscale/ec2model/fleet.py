"""CreateFleet ``Type=instant`` as the model decides it: which pools give how many
instances (the allocation strategy, each pool's capacity and price, the account's limits
and its instance-launch bucket), and the per-override errors of the pools that gave less
than asked. A backend asks for a plan, makes the instances (moto, or ids of its own), then
commits them, so they are tracked like any launch: pending, invisible for a while, their
tags indexed late, and in the ground truth with their pool, price and fleet.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from steadyscale.ec2model.allocation import Offer, check_strategy, choose, share
from steadyscale.ec2model.catalogue import instance_vcpus
from steadyscale.ec2model.launch import Launch, LaunchRefusedError
from steadyscale.ec2model.pricing import region_zones
from steadyscale.ec2model.region import RegionModel

# EC2's limit on a fleet's overrides (LaunchTemplateConfigs x Overrides).
MAX_OVERRIDES = 300


@dataclass(frozen=True)
class FleetAsk:
    """What one CreateFleet instant asks: ``count`` instances of one market over the
    offers, chosen by ``strategy``."""

    offers: tuple[Offer, ...]
    count: int
    market: str
    strategy: str
    client_token: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # The launch template version it launches: by id (else by name), "$Latest",
    # "$Default" or a number; None when none is named.
    template_id: str | None = None
    template_name: str | None = None
    template_version: str | None = None


@dataclass(frozen=True)
class Placement:
    """Instances a pool gives a fleet, and what each costs per hour."""

    offer: Offer
    count: int
    hourly_price: float


@dataclass(frozen=True)
class OfferError:
    """Why an override gave fewer instances than asked (EC2's per-override error)."""

    offer: Offer
    code: str
    message: str


@dataclass(frozen=True)
class FleetPlan:
    fleet_id: str
    placements: tuple[Placement, ...]
    errors: tuple[OfferError, ...]
    launch_template: tuple[str, int] | None = None  # (id, version) its instances come from

    @property
    def count(self) -> int:
        return sum(p.count for p in self.placements)


def invalid(message: str) -> LaunchRefusedError:
    return LaunchRefusedError("InvalidParameterValue", message)


def check_ask(ask: FleetAsk) -> None:
    """Refuse (``InvalidParameterValue``) a request EC2 refuses whole."""
    problem = check_strategy(ask.market, ask.strategy)
    if problem is not None:
        raise invalid(problem)
    if ask.count < 1:
        raise invalid(f"TotalTargetCapacity ({ask.count}) must be at least 1")
    if not ask.offers:
        raise invalid("the fleet names no instance type to launch")
    if len(ask.offers) > MAX_OVERRIDES:
        raise invalid(f"a fleet may have at most {MAX_OVERRIDES} overrides")


class FleetIds:
    """Fleet ids in EC2's format, seeded per region."""

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(f"{seed}/fleets")

    def new(self) -> str:
        hexed = f"{self._rng.getrandbits(128):032x}"
        return f"fleet-{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def _distinct(offers: Sequence[Offer]) -> list[Offer]:
    """One offer per pool: a later override of a pool already named adds nothing."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for offer in offers:
        pool = (offer.instance_type, offer.availability_zone)
        if pool not in seen:
            seen.add(pool)
            kept.append(offer)
    return kept


def _template(
    model: RegionModel, ask: FleetAsk, now: float
) -> tuple[str, int] | LaunchRefusedError | None:
    """The (id, version) of the fleet's launch template as EC2 shows it now, or EC2's
    not-found error while it does not show it (yet); None when the fleet names none."""
    if ask.template_id is None and ask.template_name is None:
        return None
    templates = model.templates
    try:
        record = templates.find(now, name=ask.template_name, template_id=ask.template_id)
        version = templates.version(record, ask.template_version, now)
    except LaunchRefusedError as missing:
        return missing
    return (record.template_id, version.number)


def plan_fleet(model: RegionModel, ask: FleetAsk, fleet_id: str, now: float) -> FleetPlan:
    """Which pools give how many instances now. Raises ``LaunchRefusedError`` when EC2
    refuses the call whole (bad parameters, the instance-launch bucket empty). A launch
    template EC2 does not show yet launches nothing: every override gets its not-found
    error, as EC2 answers an instant fleet."""
    check_ask(ask)
    template = _template(model, ask, now)
    if isinstance(template, LaunchRefusedError):
        unlaunched = tuple(OfferError(o, template.code, template.message) for o in ask.offers)
        return FleetPlan(fleet_id, (), unlaunched)
    wanted = ask.count
    budget = model.gate.resource_budget("RunInstances", now)
    if budget is not None:
        if budget < 1:
            raise LaunchRefusedError("RequestLimitExceeded", "Request limit exceeded.", status=503)
        wanted = min(wanted, budget)
    market = ask.market

    def price(offer: Offer) -> float:
        return model.prices.price(offer.instance_type, offer.availability_zone, market, now)

    def depth(offer: Offer) -> float:
        return model.capacity.depth((offer.instance_type, offer.availability_zone, market), now)

    candidates = _distinct(ask.offers)
    placements: list[Placement] = []
    errors: list[OfferError] = []
    taken, taken_vcpus = 0, 0
    while wanted > 0 and candidates:
        offer = choose(candidates, ask.strategy, wanted, price, depth)
        asked = share(ask.strategy, wanted, len(candidates))
        candidates.remove(offer)
        launch = Launch(offer.instance_type, offer.availability_zone, market, 1, asked)
        try:
            got = model.capacity.admit(launch, asked, now, already=(taken, taken_vcpus))
        except LaunchRefusedError as refused:
            errors.append(OfferError(offer, refused.code, refused.message))
            continue
        placements.append(Placement(offer, got, price(offer)))
        wanted -= got
        taken += got
        if market == "on-demand":
            taken_vcpus += got * instance_vcpus(offer.instance_type)
        if got < asked and wanted > 0:
            errors.append(OfferError(offer, *_short_of(offer)))
    return FleetPlan(fleet_id, tuple(placements), tuple(errors), template)


def _short_of(offer: Offer) -> tuple[str, str]:
    return (
        "InsufficientInstanceCapacity",
        f"There is not enough capacity to fulfill your request for {offer.instance_type} "
        f"in {offer.availability_zone}.",
    )


def fleet_tags(plan: FleetPlan) -> dict[str, str]:
    """The tags EC2 itself puts on an instance a fleet launches from a launch template."""
    if plan.launch_template is None:
        return {}
    template_id, version = plan.launch_template
    return {
        "aws:ec2launchtemplate:id": template_id,
        "aws:ec2launchtemplate:version": str(version),
        "aws:ec2:fleet-id": plan.fleet_id,
    }


def commit_fleet(
    model: RegionModel,
    ask: FleetAsk,
    plan: FleetPlan,
    ids: Sequence[Sequence[str]],
    now: float,
) -> None:
    """Track the instances a backend made for each placement of ``plan`` (``ids[n]`` for
    ``plan.placements[n]``)."""
    for placement, placed in zip(plan.placements, ids, strict=True):
        offer = placement.offer
        launch = Launch(
            instance_type=offer.instance_type,
            availability_zone=offer.availability_zone,
            market=ask.market,
            min_count=1,
            max_count=placement.count,
            client_token=ask.client_token,
            tags={**ask.tags, **fleet_tags(plan)},
        )
        model.register_launch(launch, list(placed), now)
        for instance_id in placed:
            inst = model.instances[instance_id]
            inst.fleet_id = plan.fleet_id
            inst.launch_template = plan.launch_template
            inst.history[0] = (now, inst.state.value, "CreateFleet")


def pools_truth(
    model: RegionModel, instance_types: Sequence[str], now: float
) -> list[dict[str, object]]:
    """Ground truth of the pools of ``instance_types`` in every zone and market: price
    now, instances it could still give (None: unlimited), and whether it is out of
    capacity; what the cheapest feasible allocation is computed from."""
    found: list[dict[str, object]] = []
    for instance_type in instance_types:
        for zone in region_zones(model.region):
            for market in ("spot", "on-demand"):
                pool = (instance_type, zone, market)
                depth = model.capacity.depth(pool, now)
                found.append(
                    {
                        "instance_type": instance_type,
                        "availability_zone": zone,
                        "market": market,
                        "hourly_price": model.prices.price(instance_type, zone, market, now),
                        "room": None if depth == float("inf") else int(depth),
                        "out_of_capacity": model.capacity.is_out_of_capacity(pool),
                    }
                )
    return found
