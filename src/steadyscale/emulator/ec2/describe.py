"""DescribeInstances and DescribeInstanceStatus as an eventually consistent EC2 answers
them: moto finds the instances, the model hides those an operation cannot see yet (by id,
listing, tag index), shows stale states and flickers; listings are paged by NextToken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.region import RegionModel
from steadyscale.ec2model.settings import Operation
from steadyscale.emulator.ec2.records import RegionRecords, state_view
from steadyscale.emulator.ec2.replies import ClientError, ok
from steadyscale.emulator.outcome import Outcome

# Filters that read the tag index rather than the instance itself (fault F3).
_TAG_FILTER_PREFIX = "tag:"


def _tag_filter_keys(filters: dict[str, Any]) -> list[str] | bool | None:
    """Keys whose index a filter needs: a list, None for "any key", or False for none."""
    keys: list[str] = []
    for name, values in filters.items():
        if name.startswith(_TAG_FILTER_PREFIX):
            keys.append(name[len(_TAG_FILTER_PREFIX) :])
        elif name == "tag-key":
            keys.extend(values if isinstance(values, list) else [values])
        elif name == "tag-value":
            return None
    return keys if keys else False


def _max_results(response: EC2Response, instance_ids: list[str]) -> int | None:
    raw = response._get_param("MaxResults")
    if instance_ids and raw is not None:
        raise ClientError(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        )
    if raw is None:
        return None
    try:
        max_results = int(raw)
    except (TypeError, ValueError):
        max_results = -1
    if not 5 <= max_results <= 1000:
        raise ClientError(
            "InvalidParameterValue",
            f"Value ({raw}) for parameter maxResults is invalid. "
            "Expecting a value between 5 and 1000.",
        )
    return max_results


def _visible(
    model: RegionModel,
    reservations: list[Any],
    operation: Operation,
    tag_keys: list[str] | bool | None,
    now: float,
) -> list[tuple[Any, Any]]:
    """(reservation, instance as shown) for each instance the operation sees now."""
    visibility = model.visibility
    visible: list[tuple[Any, Any]] = []
    for reservation in reservations:
        for inst in reservation.instances:
            iid = inst.id
            if not model.tracks(iid):
                visible.append((reservation, inst))
                continue
            if not visibility.is_visible(iid, operation, now):
                continue
            if tag_keys is not False and not visibility.tags_indexed(
                iid, tag_keys if isinstance(tag_keys, list) else None, now
            ):
                continue
            if operation is Operation.LISTING and visibility.flickers(iid):
                continue
            seen = visibility.observed_state(iid, now)
            if seen is not None and seen.value != inst._state.name:
                visible.append((reservation, state_view(inst, seen)))
            else:
                visible.append((reservation, inst))
    return visible


def _encode_token(offset: int, last_id: str) -> str:
    return f"{offset}.{last_id}"


def _decode_token(token: str, ids: list[str]) -> int:
    """Resume after the last id of the previous page, even if the list shifted."""
    offset_text, _, last_id = token.partition(".")
    try:
        return ids.index(last_id) + 1
    except ValueError:
        pass
    try:
        return max(0, int(offset_text))
    except ValueError:
        raise ClientError("InvalidParameterValue", f"Invalid NextToken {token!r}") from None


def _page(
    visible: list[tuple[Any, Any]], max_results: int | None, token: str | None
) -> dict[str, Any]:
    """One page of the answer, its instances grouped back into their reservations."""
    start = _decode_token(token, [inst.id for _, inst in visible]) if token else 0
    end = len(visible) if max_results is None else start + max_results
    page = visible[start:end]
    grouped: dict[str, Any] = {}
    for reservation, inst in page:
        view = grouped.get(reservation.id)
        if view is None:
            view = copy.copy(reservation)
            view.instances = []
            grouped[reservation.id] = view
        view.instances.append(inst)
    result: dict[str, Any] = {"Reservations": list(grouped.values())}
    if end < len(visible) and page:
        result["NextToken"] = _encode_token(end, page[-1][1].id)
    return result


def describe_instances(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    filters = response._filters_from_querystring()
    instance_ids: list[str] = response._get_param("InstanceIds", []) or []
    max_results = _max_results(response, instance_ids)
    token = response._get_param("NextToken")
    if instance_ids:
        records.require_visible(instance_ids, Operation.DESCRIBE_BY_ID, now)
        reservations = records.backend.get_reservations_by_instance_ids(
            instance_ids, filters=filters or None
        )
        operation = Operation.DESCRIBE_BY_ID
    else:
        reservations = records.backend.all_reservations(filters or None)
        operation = Operation.LISTING
    visible = _visible(records.model, reservations, operation, _tag_filter_keys(filters), now)
    return ok(response, ActionResult(_page(visible, max_results, token)))


def describe_instance_status(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    instance_ids: list[str] = response._get_param("InstanceIds", []) or []
    if instance_ids:
        records.require_visible(instance_ids, Operation.DESCRIBE_BY_ID, now)
    result = response.describe_instance_status()
    found: Any = result.result
    operation = Operation.DESCRIBE_BY_ID if instance_ids else Operation.LISTING
    visibility = records.model.visibility
    statuses = [
        _checked(records, inst)
        for inst in found["InstanceStatuses"]
        if visibility.is_visible(inst.id, operation, now)
    ]
    wanted = _status_filters(response._filters_from_querystring() or {})
    statuses = [inst for inst in statuses if _passes(inst, wanted)]
    return ok(response, ActionResult({"InstanceStatuses": statuses}))


# The status filters EC2 offers (moto's own filter ignores them), by what they read.
_STATUS_FILTERS: dict[str, Callable[[Any], str | None]] = {
    "instance-status.status": lambda inst: inst.instance_status.get("Status"),
    "system-status.status": lambda inst: inst.system_status.get("Status"),
    "instance-status.reachability": lambda inst: _reachability(inst.instance_status),
    "system-status.reachability": lambda inst: _reachability(inst.system_status),
}


def _reachability(status: dict[str, Any]) -> str | None:
    details = status.get("Details") or [{}]
    return str(details[0].get("Status")) if details[0] else None


def _status_filters(filters: dict[str, Any]) -> dict[str, list[str]]:
    return {name: list(values) for name, values in filters.items() if name in _STATUS_FILTERS}


def _passes(inst: Any, wanted: dict[str, list[str]]) -> bool:
    return all(_STATUS_FILTERS[name](inst) in values for name, values in wanted.items())


_FAILED = {"Status": "impaired", "Details": [{"Name": "reachability", "Status": "failed"}]}


_IMPAIRED_TYPES: dict[type, type] = {}


def _impaired_view(inst: Any) -> Any:
    """A shallow copy of moto's record of an instance whose status checks fail: the same
    answer in everything but the instance status (a subclass of the same name: moto's
    serializer finds an answer's fields by its record's class name)."""
    kind = type(inst)
    impaired = _IMPAIRED_TYPES.get(kind)
    if impaired is None:
        impaired = type(kind.__name__, (kind,), {"instance_status": _FAILED})
        _IMPAIRED_TYPES[kind] = impaired
    view = copy.copy(inst)
    view.__class__ = impaired
    return view


def _checked(records: RegionRecords, inst: Any) -> Any:
    """The instance as its status checks find it: impaired when the model says so and
    it runs (moto answers every running instance ok)."""
    tracked = records.model.instances.get(inst.id)
    if tracked is not None and tracked.impaired and inst.state_code == 16:
        return _impaired_view(inst)
    return inst
