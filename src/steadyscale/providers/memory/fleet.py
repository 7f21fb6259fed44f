"""The in-memory backend's fleet calls: CreateFleet instant, launch templates and spot
prices, answered by the region model exactly as the emulator answers them (the same
allocation, capacity, prices, template visibility and ClientToken rules), through the same
call plumbing as every other call (pacing, the gate's throttling and faults, the log).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from steadyscale.ec2model.allocation import Offer
from steadyscale.ec2model.fleet import FleetAsk, FleetIds, FleetPlan, commit_fleet, plan_fleet
from steadyscale.ec2model.launch import ClientTokens, LaunchRefusedError, fingerprint
from steadyscale.ec2model.pricing import region_zones
from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.templates import TemplateRecord
from steadyscale.errors import cloud_error
from steadyscale.providers.memory.calls import ModelCalls
from steadyscale.providers.memory.views import launched
from steadyscale.providers.memory.zones import Zones
from steadyscale.providers.protocol import (
    FleetError,
    FleetResult,
    FleetSpec,
    NotVisibleYet,
    TemplateVersion,
)
from steadyscale.providers.wire import create_fleet_params, instance_tags
from steadyscale.retries.pacing import ClientPacer


@dataclass(frozen=True)
class _FleetAnswer:
    """What a CreateFleet answered, kept for a resend under the same ClientToken."""

    fleet_id: str
    instance_ids: tuple[str, ...]
    errors: tuple[FleetError, ...]


@dataclass
class _FleetState:
    ids: FleetIds
    fleets: ClientTokens[_FleetAnswer] = field(default_factory=ClientTokens)
    templates: ClientTokens[TemplateVersion] = field(default_factory=ClientTokens)


def _version(record: TemplateRecord, number: int) -> TemplateVersion:
    data = record.versions[number - 1].data
    return TemplateVersion(record.name, record.template_id, number, data)


def _errors(spec: FleetSpec, plan: FleetPlan) -> tuple[FleetError, ...]:
    return tuple(
        FleetError(
            code=error.code,
            message=error.message,
            instance_type=error.offer.instance_type,
            availability_zone=error.offer.availability_zone,
            subnet_id=error.offer.subnet_id,
        )
        for error in plan.errors
    )


class FleetCalls:
    """Fleet and launch-template calls of ``MemoryProvider`` (a mixin on its model)."""

    cluster_name: str
    region: str
    model: RegionModel
    _calls: ModelCalls
    _pacer: ClientPacer
    _zones: Zones
    _fleet_state: _FleetState | None = None

    @property
    def _fleets(self) -> _FleetState:
        if self._fleet_state is None:
            self._fleet_state = _FleetState(FleetIds(f"{self.model.settings.seed}/{self.region}"))
        return self._fleet_state

    # ------------------------------------------------------------------ CreateFleet

    def _ask(self, spec: FleetSpec, params: Mapping[str, Any]) -> FleetAsk:
        offers = tuple(
            Offer(
                index=n,
                instance_type=o.instance_type,
                availability_zone=o.availability_zone or self._zones.of_subnet(o.subnet_id),
                subnet_id=o.subnet_id,
                priority=o.priority,
            )
            for n, o in enumerate(spec.overrides)
        )
        return FleetAsk(
            offers=offers,
            count=spec.count,
            market=spec.market,
            strategy=spec.allocation_strategy,
            client_token=spec.client_token,
            tags=instance_tags(params),
            template_id=spec.launch_template.template_id,
            template_version=str(spec.launch_template.version),
        )

    def launch_fleet(self, spec: FleetSpec) -> FleetResult:
        params = create_fleet_params(spec, self.cluster_name)
        params_fingerprint = fingerprint(params)
        ask = self._ask(spec, params)
        model, state = self.model, self._fleets

        def answer(found: _FleetAnswer) -> FleetResult:
            shown = launched(model, found.instance_ids).instances
            return FleetResult(shown, found.errors, found.fleet_id)

        def run(now: float) -> FleetResult:
            try:
                previous = state.fleets.replay(spec.client_token, params_fingerprint)
                if previous is not None:
                    return answer(previous)
                plan = plan_fleet(model, ask, state.ids.new(), now)
            except LaunchRefusedError as refused:
                raise cloud_error(refused.code, refused.message, refused.status) from None
            ids = [[model.new_instance_id() for _ in range(p.count)] for p in plan.placements]
            commit_fleet(model, ask, plan, ids, now)
            found = _FleetAnswer(
                plan.fleet_id, tuple(i for placed in ids for i in placed), _errors(spec, plan)
            )
            state.fleets.remember(spec.client_token, params_fingerprint, found)
            model.advance(now)
            return answer(found)

        result = self._calls.call("CreateFleet", run)
        self._pacer.charge_launch(len(result.instances))
        return result

    # ------------------------------------------------------------------ spot prices

    def spot_prices(self, instance_types: Sequence[str]) -> dict[tuple[str, str], float]:
        prices = self.model.prices
        zones = region_zones(self.region)

        def run(now: float) -> dict[tuple[str, str], float]:
            return {(t, z): prices.spot(t, z, now) for t in instance_types for z in zones}

        return self._calls.call("DescribeSpotPriceHistory", run)

    # ------------------------------------------------------------------ launch templates

    def launch_template_versions(self, name: str) -> list[TemplateVersion] | NotVisibleYet:
        templates = self.model.templates

        def run(now: float) -> list[TemplateVersion] | NotVisibleYet:
            try:
                record = templates.find(now, name=name)
            except LaunchRefusedError as missing:
                return NotVisibleYet(name, 1, f"launch template not visible yet ({missing.code})")
            return [_version(record, v.number) for v in templates.versions(record, now)]

        return self._calls.call("DescribeLaunchTemplateVersions", run)

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        templates = self.model.templates

        def create(now: float) -> TemplateVersion:
            record = templates.create(name, data, now)
            return _version(record, 1)

        params = {"LaunchTemplateName": name, "LaunchTemplateData": dict(data)}
        return self._template_call("CreateLaunchTemplate", params, client_token, create)

    def create_launch_template_version(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        templates = self.model.templates

        def create(now: float) -> TemplateVersion:
            record = templates.find(now, name=name)
            return _version(record, templates.add_version(record, data, now))

        params = {"LaunchTemplateName": name, "LaunchTemplateData": dict(data)}
        return self._template_call("CreateLaunchTemplateVersion", params, client_token, create)

    def _template_call(
        self,
        action: str,
        params: Mapping[str, Any],
        client_token: str,
        create: Callable[[float], TemplateVersion],
    ) -> TemplateVersion:
        tokens = self._fleets.templates
        params_fingerprint = fingerprint({"Action": action, **params})

        def run(now: float) -> TemplateVersion:
            try:
                previous = tokens.replay(client_token, params_fingerprint)
                if previous is not None:
                    return previous
                made = create(now)
            except LaunchRefusedError as refused:
                raise cloud_error(refused.code, refused.message, refused.status) from None
            tokens.remember(client_token, params_fingerprint, made)
            return made

        result: TemplateVersion = self._calls.call(action, run)
        return result
