"""The boto3 provider's fleet calls: CreateFleet instant, launch templates (a template
EC2 does not show yet is ``NotVisibleYet``, not an error) and the latest spot prices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from steadyscale.core.instances import TAG_CLUSTER
from steadyscale.errors import CloudError
from steadyscale.providers.fleet_wire import fleet_result
from steadyscale.providers.protocol import FleetResult, FleetSpec, NotVisibleYet, TemplateVersion
from steadyscale.providers.wire import create_fleet_params
from steadyscale.retries.clock import Clock

TEMPLATE_NOT_FOUND = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.NotFoundException",
)


def _version(raw: Mapping[str, Any], data: Mapping[str, Any] | None = None) -> TemplateVersion:
    number = raw.get("VersionNumber") or raw.get("LatestVersionNumber") or 1
    return TemplateVersion(
        name=str(raw.get("LaunchTemplateName", "")),
        template_id=str(raw.get("LaunchTemplateId", "")),
        version=int(number),
        data=dict(data if data is not None else raw.get("LaunchTemplateData") or {}),
    )


class FleetApi:
    """Fleet calls of ``EC2Provider`` (a mixin: it shares the provider's client, pacing
    and call counting through ``_call``)."""

    cluster_name: str
    _clock: Clock

    def _call(self, action: str, **params: Any) -> Any:
        raise NotImplementedError

    def _charge_instances(self, launched: int) -> None:
        raise NotImplementedError

    def launch_fleet(self, spec: FleetSpec) -> FleetResult:
        answer = self._call("CreateFleet", **create_fleet_params(spec, self.cluster_name))
        result = fleet_result(spec, answer, self.cluster_name)
        self._charge_instances(len(result.instances))
        return result

    def launch_template_versions(self, name: str) -> list[TemplateVersion] | NotVisibleYet:
        versions: list[TemplateVersion] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"LaunchTemplateName": name, "MaxResults": 200}
            if token:
                params["NextToken"] = token
            try:
                page = self._call("DescribeLaunchTemplateVersions", **params)
            except CloudError as exc:
                if exc.code in TEMPLATE_NOT_FOUND:
                    return NotVisibleYet(name, 1, "launch template not visible yet")
                raise
            versions.extend(_version(raw) for raw in page.get("LaunchTemplateVersions", []))
            token = page.get("NextToken")
            if not token:
                return sorted(versions, key=lambda v: v.version)

    def create_launch_template(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        answer = self._call(
            "CreateLaunchTemplate",
            LaunchTemplateName=name,
            LaunchTemplateData=dict(data),
            ClientToken=client_token,
            VersionDescription=client_token,
            TagSpecifications=[
                {
                    "ResourceType": "launch-template",
                    "Tags": [{"Key": TAG_CLUSTER, "Value": self.cluster_name}],
                }
            ],
        )
        return _version(answer.get("LaunchTemplate") or {}, data)

    def create_launch_template_version(
        self, name: str, data: Mapping[str, Any], client_token: str
    ) -> TemplateVersion:
        answer = self._call(
            "CreateLaunchTemplateVersion",
            LaunchTemplateName=name,
            LaunchTemplateData=dict(data),
            ClientToken=client_token,
            VersionDescription=client_token,
        )
        return _version(answer.get("LaunchTemplateVersion") or {}, data)

    def spot_prices(self, instance_types: Sequence[str]) -> dict[tuple[str, str], float]:
        """The latest price per (type, AZ): DescribeSpotPriceHistory from now (the
        provider's clock, the endpoint's time) answers the price in effect now, with
        newer entries of some pools; the newest wins."""
        latest: dict[tuple[str, str], tuple[datetime, float]] = {}
        token: str | None = None
        while instance_types:
            params: dict[str, Any] = {
                "InstanceTypes": list(instance_types),
                "ProductDescriptions": ["Linux/UNIX"],
                "StartTime": datetime.now(UTC),
                "MaxResults": 1000,
            }
            if token:
                params["NextToken"] = token
            page = self._call("DescribeSpotPriceHistory", **params)
            for raw in page.get("SpotPriceHistory", []):
                key = (str(raw["InstanceType"]), str(raw["AvailabilityZone"]))
                stamp = raw.get("Timestamp") or datetime.min.replace(tzinfo=UTC)
                if key not in latest or stamp >= latest[key][0]:
                    latest[key] = (stamp, float(raw["SpotPrice"]))
            token = page.get("NextToken")
            if not token:
                break
        return {key: price for key, (_, price) in latest.items()}
