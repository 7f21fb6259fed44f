"""RunInstances: moto launches, the model decides how many (capacity, limits, the launch
bucket) and tracks them from the moment they are pending; a repeated ClientToken gets the
first answer again, and a token reused with other parameters is refused.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ec2.responses import EC2Response

from steadyscale.ec2model.instances import InstanceState
from steadyscale.ec2model.launch import Launch, LaunchRefusedError, fingerprint
from steadyscale.emulator.ec2.records import RegionRecords, state_view
from steadyscale.emulator.ec2.replies import ClientError, ok
from steadyscale.emulator.outcome import Outcome, ec2_error
from steadyscale.providers.wire import instance_tags, market_of


def _counts(response: EC2Response) -> tuple[int, int]:
    try:
        min_count = int(response._get_param("MinCount", 1))
        max_count = int(response._get_param("MaxCount", min_count))
    except (TypeError, ValueError):
        raise ClientError(
            "InvalidParameterValue", "MinCount and MaxCount must be integers"
        ) from None
    if min_count < 1 or max_count < min_count:
        raise ClientError(
            "InvalidParameterValue",
            f"MinCount ({min_count}) must be >= 1 and <= MaxCount ({max_count})",
        )
    return min_count, max_count


def _launch_zone(response: EC2Response, backend: Any) -> str:
    subnet_id = response._get_param("SubnetId") or response._get_param(
        "NetworkInterface.1.SubnetId"
    )
    if not subnet_id:
        nics = response._get_param("NetworkInterfaces", []) or []
        if nics and isinstance(nics[0], dict):
            subnet_id = nics[0].get("SubnetId")
    if subnet_id:
        try:
            return str(backend.get_subnet(subnet_id).availability_zone)
        except ServiceException:
            pass  # moto reports the bad subnet when it launches
    placement = response._get_param("Placement.AvailabilityZone")
    return str(placement or f"{response.region}a")


def run_instances(response: EC2Response, records: RegionRecords, now: float) -> Outcome:
    min_count, max_count = _counts(response)
    params = response.params
    token = response._get_param("ClientToken")
    params_fingerprint = fingerprint(params)
    try:
        previous = records.tokens.replay(token, params_fingerprint)
        if previous is not None:
            return ok(response, ActionResult(previous))
        launch = Launch(
            instance_type=response._get_param("InstanceType") or "m1.small",
            availability_zone=_launch_zone(response, records.backend),
            market=market_of(params),
            min_count=min_count,
            max_count=max_count,
            client_token=token,
            tags=instance_tags(params),
        )
        count = records.model.admit_launch(launch, now)
    except LaunchRefusedError as refused:
        if refused.status != 400:  # the launch bucket: a throttle, not a client error
            return ec2_error(refused.status, refused.code, refused.message)
        raise ClientError(refused.code, refused.message) from None
    response.params["MinCount"] = count
    result = response.run_instances()
    reservation: Any = result.result
    launched = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    # moto ignores DisableApiTermination at launch; EC2 honours it.
    protect = bool(response._get_param("DisableApiTermination"))
    for inst in reservation.instances:
        if protect:
            inst.disable_api_termination = True
        inst.launch_time = launched  # on the emulator's clock, so time scale applies
        records.adopt(inst, reservation.id)
    if reservation.instances:  # moto placed them
        launch = dataclasses.replace(
            launch, availability_zone=reservation.instances[0].placement.zone
        )
    ids = [inst.id for inst in reservation.instances]
    records.model.register_launch(launch, ids, now)
    for inst in reservation.instances:  # moto chose the addresses here
        records.model.instances[inst.id].private_ip = str(inst.private_ip)
    if token:
        # EC2 answers a repeated token with the original response, so keep a snapshot.
        snapshot = copy.copy(reservation)
        snapshot.instances = [state_view(i, InstanceState.PENDING) for i in reservation.instances]
        records.tokens.remember(token, params_fingerprint, snapshot)
    records.advance(now)
    outcome = ok(response, result)
    outcome.instances = len(ids)
    return outcome
