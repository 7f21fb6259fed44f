"""CreateFleet ``Type=instant`` as EC2 answers it, which moto's does not (moto ignores
capacity, prices, allocation strategies and the ClientToken): the model plans which pools
give how many instances, moto launches them pool by pool, and the model tracks them like
any launch (invisible for a while, tags indexed late). The answer lists the instances per
pool and an error per override that fell short; a resend under the same ClientToken gets
the first answer again, and other parameters under it are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.allocation import DEFAULT_STRATEGY, Offer
from steadyscale.ec2model.fleet import FleetAsk, FleetPlan, commit_fleet, fleet_tags, plan_fleet
from steadyscale.ec2model.launch import LaunchRefusedError, fingerprint
from steadyscale.emulator.ec2.records import RegionRecords
from steadyscale.emulator.ec2.replies import ClientError, ok
from steadyscale.emulator.outcome import Outcome, ec2_error

INSTANT_ONLY = (
    "The emulator serves CreateFleet with Type=instant only (got {kind!r}); maintain and "
    "request fleets are not emulated."
)


def _float(raw: Any) -> float | None:
    try:
        return None if raw in (None, "") else float(raw)
    except (TypeError, ValueError):
        raise ClientError("InvalidParameterValue", f"Priority {raw!r} is not a number") from None


def _config(response: EC2Response) -> dict[str, Any]:
    configs = response._get_param("LaunchTemplateConfigs", []) or []
    if len(configs) != 1:
        raise ClientError(
            "InvalidParameterValue",
            "The emulator serves CreateFleet with exactly one LaunchTemplateConfigs entry "
            f"(got {len(configs)}).",
        )
    config: dict[str, Any] = configs[0]
    return config


def _offers(config: dict[str, Any], records: RegionRecords, region: str) -> tuple[Offer, ...]:
    offers = []
    for index, override in enumerate(config.get("Overrides") or []):
        subnet = override.get("SubnetId")
        zone = override.get("AvailabilityZone")
        if subnet:
            zone = str(records.backend.get_subnet(subnet).availability_zone)
        instance_type = override.get("InstanceType")
        if not instance_type:
            raise ClientError("InvalidParameterValue", "every override must name InstanceType")
        offers.append(
            Offer(
                index=index,
                instance_type=str(instance_type),
                availability_zone=str(zone or f"{region}a"),
                subnet_id=subnet,
                priority=_float(override.get("Priority")),
            )
        )
    return tuple(offers)


def _ask(response: EC2Response, records: RegionRecords) -> FleetAsk:
    target = response._get_param("TargetCapacitySpecification", {}) or {}
    market = str(target.get("DefaultTargetCapacityType") or "on-demand")
    options = response._get_param("SpotOptions" if market == "spot" else "OnDemandOptions")
    strategy = (options or {}).get("AllocationStrategy") or DEFAULT_STRATEGY.get(market, "")
    try:
        count = int(target.get("TotalTargetCapacity", 0))
    except (TypeError, ValueError):
        count = 0
    config = _config(response)
    spec = config.get("LaunchTemplateSpecification") or {}
    if not spec.get("LaunchTemplateId") and not spec.get("LaunchTemplateName"):
        raise ClientError("MissingParameter", "LaunchTemplateSpecification needs an id or a name")
    return FleetAsk(
        offers=_offers(config, records, response.region),
        count=count,
        market=market,
        strategy=str(strategy),
        client_token=response._get_param("ClientToken"),
        tags=dict(response._parse_tag_specification().get("instance", {})),
        template_id=spec.get("LaunchTemplateId"),
        template_name=spec.get("LaunchTemplateName"),
        template_version=spec.get("Version"),
    )


def _launch(records: RegionRecords, ask: FleetAsk, plan: FleetPlan, now: float) -> list[list[str]]:
    """moto's instances for each placement of the plan; their ids per placement."""
    if plan.launch_template is None:
        return [[] for _ in plan.placements]
    template_id, number = plan.launch_template
    data = records.model.templates.find(now, template_id=template_id).versions[number - 1].data
    tags = {**ask.tags, **fleet_tags(plan)}
    launched_at = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    ids: list[list[str]] = []
    for placement in plan.placements:
        offer = placement.offer
        reservation = records.backend.run_instances(
            data.get("ImageId"),
            placement.count,
            data.get("UserData"),
            [],
            instance_type=offer.instance_type,
            is_instance_type_default=False,
            placement=None if offer.subnet_id else offer.availability_zone,
            region_name=records.model.region,
            subnet_id=offer.subnet_id,
            key_name=data.get("KeyName"),
            security_group_ids=list(data.get("SecurityGroupIds") or []),
            nics=[],
            tags={"instance": tags},
            instance_market_options="spot" if ask.market == "spot" else {},
            client_token=ask.client_token,
        )
        for inst in reservation.instances:
            inst.launch_time = launched_at  # on the emulator's clock
            records.adopt(inst, reservation.id)
        ids.append([inst.id for inst in reservation.instances])
    commit_fleet(records.model, ask, plan, ids, now)
    for inst in (i for placed in ids for i in placed):
        records.model.instances[inst].private_ip = str(records.instances[inst].private_ip)
    return ids


def _template_spec(plan: FleetPlan, response: EC2Response) -> dict[str, Any]:
    if plan.launch_template is not None:
        template_id, number = plan.launch_template
        return {"LaunchTemplateId": template_id, "Version": str(number)}
    spec: dict[str, Any] = dict(_config(response).get("LaunchTemplateSpecification") or {})
    return spec


def _overrides(offer: Offer) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "InstanceType": offer.instance_type,
        "AvailabilityZone": offer.availability_zone,
    }
    if offer.subnet_id:
        shaped["SubnetId"] = offer.subnet_id
    if offer.priority is not None:
        shaped["Priority"] = offer.priority
    return shaped


def _answer(
    response: EC2Response, ask: FleetAsk, plan: FleetPlan, ids: list[list[str]]
) -> dict[str, Any]:
    template = _template_spec(plan, response)

    def chosen(offer: Offer) -> dict[str, Any]:
        return {"LaunchTemplateSpecification": template, "Overrides": _overrides(offer)}

    return {
        "FleetId": plan.fleet_id,
        "Errors": [
            {
                "LaunchTemplateAndOverrides": chosen(error.offer),
                "Lifecycle": ask.market,
                "ErrorCode": error.code,
                "ErrorMessage": error.message,
            }
            for error in plan.errors
        ],
        "Instances": [
            {
                "LaunchTemplateAndOverrides": chosen(placement.offer),
                "Lifecycle": ask.market,
                "InstanceIds": placed,
                "InstanceType": placement.offer.instance_type,
            }
            for placement, placed in zip(plan.placements, ids, strict=True)
        ],
    }


def create_fleet(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    kind = response._get_param("Type") or "maintain"
    if kind != "instant":
        raise ClientError("InvalidParameterValue", INSTANT_ONLY.format(kind=kind))
    params_fingerprint = fingerprint(response.params)
    token = response._get_param("ClientToken")
    try:
        previous = records.fleet_tokens.replay(token, params_fingerprint)
        if previous is not None:
            return ok(response, ActionResult(previous))
        ask = _ask(response, records)
        plan = plan_fleet(records.model, ask, records.fleet_ids.new(), now)
    except LaunchRefusedError as refused:
        if refused.status != 400:  # the launch bucket: a throttle, not a client error
            return ec2_error(refused.status, refused.code, refused.message)
        raise ClientError(refused.code, refused.message) from None
    ids = _launch(records, ask, plan, now)
    answer = _answer(response, ask, plan, ids)
    records.fleet_tokens.remember(token, params_fingerprint, answer)
    records.advance(now)
    outcome = ok(response, ActionResult(answer))
    outcome.instances = plan.count
    return outcome
