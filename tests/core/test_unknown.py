"""Judging an instance the ledger does not track, and the record that takes one over."""

from __future__ import annotations

import pytest

from steadyscale.core.instances import TAG_LEDGER, TAG_NODE_TYPE, TAG_REQUEST, CloudInstance
from steadyscale.core.lifecycle import REQUIRED, Status
from steadyscale.core.unknown import Refused, Standing, adopted_record, standing


def _instance(state: str = "running", **tags: str) -> CloudInstance:
    return CloudInstance("i-1", state, instance_type="m5.large", tags=tags, launch_time=50.0)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({TAG_LEDGER: "L", TAG_REQUEST: "r-1"}, Standing.UNWANTED),
        ({TAG_LEDGER: "L", TAG_REQUEST: "r-9"}, Standing.UNKNOWN_REQUEST),
        ({TAG_LEDGER: "L"}, Standing.UNKNOWN_REQUEST),
        ({TAG_LEDGER: "M", TAG_REQUEST: "r-1"}, Standing.OTHER_LEDGER),
        ({TAG_REQUEST: "r-1"}, Standing.NO_LEDGER_ID),
        ({}, Standing.NO_LEDGER_ID),
    ],
)
def test_only_this_ledgers_id_and_a_request_it_recorded_prove_an_instance_unwanted(
    tags: dict[str, str], expected: Standing
) -> None:
    assert standing(_instance(**tags), ledger_id="L", requests={"r-1"}) is expected


def test_a_ledger_without_an_id_proves_nothing() -> None:
    inst = _instance(**{TAG_LEDGER: "L", TAG_REQUEST: "r-1"})
    assert standing(inst, ledger_id=None, requests={"r-1"}) is Standing.OTHER_LEDGER


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("pending", Status.PENDING),
        ("running", Status.RUNNING),
        ("stopping", Status.INTERRUPTED),
        ("stopped", Status.INTERRUPTED),
        ("shutting-down", Status.TERMINATING),
    ],
)
def test_an_adopted_instance_takes_the_status_its_ec2_state_means(
    state: str, status: Status
) -> None:
    inst = _instance(state, **{TAG_NODE_TYPE: "gpu", TAG_REQUEST: "r-7"})
    record = adopted_record(inst, "n-1", 100.0)
    assert not isinstance(record, Refused)
    assert (record.status, record.node_type, record.request_id) == (status, "gpu", "r-7")
    assert (record.instance_id, record.instance_type, record.launched_at) == (
        "i-1",
        "m5.large",
        50.0,
    )
    assert [h.status for h in record.history] == [status]
    # What the lifecycle requires of a record in that status is there.
    assert all(getattr(record, name) is not None for name in REQUIRED.get(status, ()))


def test_an_instance_without_a_node_type_tag_is_refused() -> None:
    refused = adopted_record(_instance(), "n-1", 100.0)
    assert isinstance(refused, Refused)
    assert refused.why == f"it has no {TAG_NODE_TYPE} tag"
