"""DescribeSpotPriceHistory from the model's spot prices (moto's are a fixed table that
never moves): each price change of each (instance type, AZ) asked for, newest first, with
the price in effect at the start time, paged by NextToken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from steadyscale.core.prices import ON_DEMAND_USD_PER_HOUR
from steadyscale.ec2model.pricing import SpotPrice, region_zones
from steadyscale.emulator.ec2.records import RegionRecords
from steadyscale.emulator.ec2.replies import ClientError, ok
from steadyscale.emulator.outcome import Outcome

_PRODUCT = "Linux/UNIX"


def _time(raw: Any, default: float) -> float:
    if raw in (None, ""):
        return default
    if isinstance(raw, datetime):
        parsed = raw
    else:
        try:
            parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise ClientError("InvalidParameterValue", f"{raw!r} is not a valid time") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _filtered(response: EC2Response, name: str) -> list[str]:
    for item in response._get_param("Filters", []) or []:
        if item.get("Name") == name:
            return [str(v) for v in item.get("Values") or item.get("Value") or []]
    return []


def _paged(response: EC2Response, entries: list[SpotPrice]) -> tuple[list[SpotPrice], str]:
    try:
        start = int(response._get_param("NextToken") or 0)
        size = int(response._get_param("MaxResults") or 1000)
    except ValueError:
        raise ClientError("InvalidParameterValue", "NextToken or MaxResults is not valid") from None
    end = start + max(1, min(size, 1000))
    return entries[start:end], (str(end) if end < len(entries) else "")


def describe_spot_price_history(
    response: EC2Response, records: RegionRecords, now: float
) -> Outcome:
    prices = records.model.prices
    types = response._get_param("InstanceTypes", []) or _filtered(response, "instance-type")
    zone = response._get_param("AvailabilityZone")
    zones = [zone] if zone else _filtered(response, "availability-zone")
    until = min(now, _time(response._get_param("EndTime"), now))
    since = _time(response._get_param("StartTime"), until)
    entries = [
        entry
        for instance_type in types or sorted(ON_DEMAND_USD_PER_HOUR)
        for az in zones or region_zones(records.model.region)
        for entry in prices.history(instance_type, az, since, until)
    ]
    entries.sort(key=lambda e: -e.at)
    page, next_token = _paged(response, entries)
    result: dict[str, Any] = {
        "SpotPriceHistory": [
            {
                "AvailabilityZone": e.availability_zone,
                "InstanceType": e.instance_type,
                "ProductDescription": _PRODUCT,
                "SpotPrice": f"{e.price:.6f}",
                "Timestamp": datetime.fromtimestamp(e.at, UTC),
            }
            for e in page
        ]
    }
    if next_token:
        result["NextToken"] = next_token
    return ok(response, ActionResult(result))
