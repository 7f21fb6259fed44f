"""moto's EC2 for one emulated account, behind the model: it parses a request, keeps the
regions (model and moto records under one lock, as moto is not thread-safe) and answers an
action, either with the model's version of it or with moto's own.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.request import Request as MotoRequest
from moto.ec2.models import ec2_backends
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import EmulatorSettings
from steadyscale.emulator.ec2 import changes, describe, fleet, launch, prices, templates
from steadyscale.emulator.ec2.records import RegionRecords
from steadyscale.emulator.ec2.replies import error_code, serialized_error
from steadyscale.emulator.outcome import Outcome, ec2_error
from steadyscale.retries.clock import Clock

log = logging.getLogger("steadyscale.emulator")

Handler = Callable[[EC2Response, RegionRecords, float], Outcome]

# The actions where EC2 is eventually consistent, or where moto's answer is not EC2's
# (fleets, launch templates, spot prices); moto answers all others.
_HANDLERS: dict[str, Handler] = {
    "RunInstances": launch.run_instances,
    "DescribeInstances": describe.describe_instances,
    "TerminateInstances": changes.terminate_instances,
    "CreateTags": changes.create_tags,
    "DeleteTags": changes.delete_tags,
    "StopInstances": changes.stop_start,
    "StartInstances": changes.stop_start,
    "RebootInstances": changes.stop_start,
    "DescribeInstanceStatus": describe.describe_instance_status,
    "CreateFleet": fleet.create_fleet,
    "CreateLaunchTemplate": templates.create_launch_template,
    "CreateLaunchTemplateVersion": templates.create_launch_template_version,
    "DescribeLaunchTemplates": templates.describe_launch_templates,
    "DescribeLaunchTemplateVersions": templates.describe_launch_template_versions,
    "DescribeSpotPriceHistory": prices.describe_spot_price_history,
}


class _Request(MotoRequest):
    from_wsgi_server = True


@dataclass(frozen=True)
class Ec2Call:
    """One parsed EC2 request: its action, region, and moto's parser of it."""

    action: str
    region: str
    response: EC2Response

    @property
    def resources(self) -> int:
        """What the call charges its resource bucket up front. RunInstances' bucket is
        charged by what it launches instead."""
        if self.action == "TerminateInstances":
            return len(self.response._get_param("InstanceIds", []) or [])
        return 0

    def parameter_names(self) -> tuple[str, ...]:
        """The request's top-level parameter names (never their values)."""
        query = self._query()
        return tuple(sorted({key.split(".", 1)[0] for key in query} - {"Action", "Version"}))

    def tagged_resource_types(self) -> tuple[str, ...]:
        """The resource types the request's TagSpecifications tag."""
        return tuple(
            sorted(
                {
                    str(values[0])
                    for key, values in self._query().items()
                    if key.startswith("TagSpecification.")
                    and key.endswith(".ResourceType")
                    and values
                }
            )
        )

    def _query(self) -> dict[str, Any]:
        query: dict[str, Any] = getattr(self.response, "querystring", None) or {}
        return query


class MotoEC2:
    """moto's EC2 backends of one emulated account, and the regions' models."""

    def __init__(self, settings: EmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        # moto keeps its backends per account id; a fresh id isolates this emulator.
        self.account_id = f"{random.SystemRandom().randrange(10**11, 10**12):012d}"
        self._lock = threading.RLock()
        self._regions: dict[str, RegionRecords] = {}

    @contextmanager
    def region_now(self, name: str) -> Iterator[tuple[RegionRecords, float]]:
        """The region, its model's due transitions mirrored, and the time, under the lock."""
        with self._lock:
            now = self.clock.now()
            records = self._regions.get(name)
            if records is None:
                model = RegionModel(self.settings, name, start=now)
                records = RegionRecords(model, account_id=self.account_id)
                self._regions[name] = records
            records.advance(now)
            yield records, now

    def parse(self, environ: dict[str, Any]) -> Ec2Call | None:
        """The request as moto reads it; None when it cannot be parsed."""
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        request = _Request(environ)
        response = EC2Response()
        try:
            response.setup_class(request)
            action = response._get_action() or ""
        except Exception as exc:  # an unparseable request: answered like EC2 would
            log.debug("unparseable request: %s", exc)
            return None
        return Ec2Call(action, response.region, response)

    def answer(self, call: Ec2Call, records: RegionRecords, now: float) -> Outcome:
        """The action's answer: the model's version of it, or moto's own."""
        response = call.response
        try:
            handler = _HANDLERS.get(call.action)
            if handler is not None:
                return handler(response, records, now)
            status, headers, body = response.call_action()
            outcome = Outcome(int(status), dict(headers), str(body))
            if outcome.status >= 400:
                outcome.outcome = error_code(outcome.body)
            return outcome
        except ServiceException as exc:
            return serialized_error(response, exc)
        except NotImplementedError:
            return ec2_error(
                400, "InvalidAction", f"The action {call.action} is not valid for this web service."
            )
        except Exception:
            log.exception("emulator failed on %s", call.action)
            return ec2_error(500, "InternalError", "An internal error has occurred.")

    def close(self) -> None:
        """Drop moto's backends of this account."""
        ec2_backends.pop(self.account_id, None)
