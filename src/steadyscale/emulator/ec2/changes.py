"""The actions that change instances: CreateTags and DeleteTags, TerminateInstances, and
Stop/Start/Reboot. Each refuses ids its operation cannot see yet (F4, F5); what it changes
is told to the model, whose transitions are then mirrored into moto's records.
"""

from __future__ import annotations

from moto.core.responses import ActionResult
from moto.ec2.exceptions import OperationNotPermitted4
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.instances import STATE_CODES, InstanceState, StateChange
from steadyscale.ec2model.settings import Operation
from steadyscale.emulator.ec2.records import RegionRecords
from steadyscale.emulator.ec2.replies import ClientError, ok
from steadyscale.emulator.outcome import Outcome


def _tagged_instance_ids(response: EC2Response) -> tuple[list[str], list[str]]:
    resources: list[str] = response._get_param("Resources", []) or []
    return resources, [r for r in resources if r.startswith("i-")]


def create_tags(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    resources, instance_ids = _tagged_instance_ids(response)
    records.require_visible(instance_ids, Operation.CREATE_TAGS, now)
    tags = {t["Key"]: t.get("Value", "") for t in response._get_param("Tags", []) or []}
    others = [r for r in resources if not r.startswith("i-")]
    if others:
        records.backend.do_resources_exist(others)
    response.error_on_dryrun()
    records.backend.create_tags(resources, tags)
    for iid in instance_ids:
        records.model.record_tags(iid, tags, now)
    return ok(response, ActionResult(None))


def delete_tags(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    _, instance_ids = _tagged_instance_ids(response)
    records.require_visible(instance_ids, Operation.CREATE_TAGS, now)
    result = response.delete_tags()
    keys = [t["Key"] for t in response._get_param("Tags", []) or []]
    for iid in instance_ids:
        records.model.remove_tags(iid, keys)
    return ok(response, result)


def terminate_instances(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    instance_ids: list[str] = response._get_param("InstanceIds", []) or []
    if not instance_ids:
        raise ClientError("MissingParameter", "The request must contain the parameter InstanceId")
    instances = records.require_visible(instance_ids, Operation.TERMINATE, now)
    response.error_on_dryrun()
    for inst in instances:
        if getattr(inst, "disable_api_termination", False) is True:
            raise OperationNotPermitted4(inst.id)  # the whole call fails, as on EC2
    model = records.model
    items = []
    changes: list[StateChange] = []
    for iid, inst in zip(instance_ids, instances, strict=True):
        if model.tracks(iid):
            previous, current, change = model.request_terminate(iid, now)
            if change is not None:
                changes.append(change)
        else:
            previous = InstanceState(inst._state.name)
            if previous is not InstanceState.TERMINATED:
                inst.terminate()
            current = InstanceState.TERMINATED
        items.append(
            {
                "InstanceId": iid,
                "CurrentState": {"Code": STATE_CODES[current], "Name": current.value},
                "PreviousState": {"Code": STATE_CODES[previous], "Name": previous.value},
            }
        )
    records.mirror(changes)
    records.advance(now)
    outcome = ok(response, ActionResult({"TerminatingInstances": items}))
    outcome.instances = len(changes)
    return outcome


def stop_start(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    """StopInstances, StartInstances and RebootInstances: moto changes the state at once;
    the model records the change (no lag of its own)."""
    action = response._get_action()
    instance_ids: list[str] = response._get_param("InstanceIds", []) or []
    records.require_visible(instance_ids, Operation.TERMINATE, now)
    method = {
        "StopInstances": response.stop_instances,
        "StartInstances": response.start_instances,
        "RebootInstances": response.reboot_instances,
    }[action]
    result = method()
    for iid in instance_ids:
        inst = records.instances.get(iid)
        if inst is not None:
            records.model.record_state(iid, InstanceState(inst._state.name), now, action)
    return ok(response, result)
