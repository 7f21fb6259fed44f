"""Launch templates as EC2 answers for them: moto keeps them, the model says when EC2 shows
each template and version (``InvalidLaunchTemplateName.NotFoundException`` until then),
and a create resent under the same ClientToken gets the first answer again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.launch import LaunchRefusedError, fingerprint
from steadyscale.ec2model.templates import TemplateRecord
from steadyscale.emulator.ec2.records import RegionRecords
from steadyscale.emulator.ec2.replies import ClientError, error_code, ok
from steadyscale.emulator.outcome import Outcome


def _moto(response: EC2Response) -> Outcome:
    status, headers, body = response.call_action()
    outcome = Outcome(int(status), dict(headers), str(body))
    if outcome.status >= 400:
        outcome.outcome = error_code(outcome.body)
    return outcome


def _find(records: RegionRecords, response: EC2Response, now: float) -> TemplateRecord:
    try:
        return records.model.templates.find(
            now,
            name=response._get_param("LaunchTemplateName"),
            template_id=response._get_param("LaunchTemplateId"),
        )
    except LaunchRefusedError as missing:
        raise ClientError(missing.code, missing.message) from None


def _once(response: EC2Response, records: RegionRecords, make: Callable[[], Outcome]) -> Outcome:
    """``make``'s answer, or the first answer given under the request's ClientToken."""
    token = response._get_param("ClientToken")
    params_fingerprint = fingerprint({"Action": response._get_action(), **response.params})
    try:
        previous = records.template_tokens.replay(token, params_fingerprint)
    except LaunchRefusedError as refused:
        raise ClientError(refused.code, refused.message) from None
    if previous is not None:
        return Outcome(previous.status, dict(previous.headers), previous.body)
    outcome = make()
    if outcome.status == 200:
        records.template_tokens.remember(token, params_fingerprint, outcome)
    return outcome


def create_launch_template(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    def make() -> Outcome:
        outcome = _moto(response)
        if outcome.status == 200:
            name = response._get_param("LaunchTemplateName")
            template = records.backend.get_launch_template_by_name(name)
            data = template.get_version(1).data
            records.model.templates.create(name, data, now, template_id=template.id)
        return outcome

    return _once(response, records, make)


def create_launch_template_version(
    response: EC2Response, records: RegionRecords, now: float
) -> Outcome:
    def make() -> Outcome:
        record = _find(records, response, now)
        outcome = _moto(response)
        if outcome.status == 200:
            template = records.backend.get_launch_template(record.template_id)
            data = template.get_version(template.latest_version_number).data
            records.model.templates.add_version(record, data, now)
        return outcome

    return _once(response, records, make)


def describe_launch_templates(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    """Named templates must all be shown (else EC2's not-found error); unnamed, only those
    shown are listed."""
    templates = records.model.templates
    names = response._get_param("LaunchTemplateNames", []) or []
    ids = response._get_param("LaunchTemplateIds", []) or []
    try:
        for name in names:
            templates.find(now, name=name)
        for template_id in ids:
            templates.find(now, template_id=template_id)
    except LaunchRefusedError as missing:
        raise ClientError(missing.code, missing.message) from None
    if not names and not ids:  # moto would list them all, shown or not
        shown = [record.name for record in templates.shown(now)]
        if not shown:
            return ok(response, ActionResult({"LaunchTemplates": []}))
        response.params["LaunchTemplateNames"] = shown
    return _moto(response)


def describe_launch_template_versions(
    response: EC2Response, records: RegionRecords, now: float
) -> Outcome:
    """Only the versions EC2 shows: a template or a named version not shown yet gets EC2's
    not-found error; unnamed versions, those shown are listed."""
    record = _find(records, response, now)
    templates = records.model.templates
    wanted: list[Any] = response._get_param("Versions", []) or []
    try:
        numbers = [templates.version(record, str(v), now).number for v in wanted]
    except LaunchRefusedError as missing:
        raise ClientError(missing.code, missing.message) from None
    if not wanted:
        numbers = [v.number for v in templates.versions(record, now)]
    response.params["Versions"] = [str(n) for n in numbers]
    return _moto(response)
