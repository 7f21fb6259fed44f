"""Ground truth, call log and fault injection over the local HTTP control paths."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import FakeEmulator, error_code, launch


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_truth_shows_instances_no_fault_hides(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("harsh")
    ids = launch(ec2, 4)
    truth = _get(f"{emu.endpoint_url}/_steadyscale/truth")
    assert sorted(i["instance_id"] for i in truth["instances"]) == sorted(ids)
    first = truth["instances"][0]
    assert first["state"] == "pending"
    assert first["tags"] == {"cluster": "c1"}
    assert set(first["visible_at"]) == {
        "describe_by_id",
        "listing",
        "tag_index",
        "create_tags",
        "terminate",
    }


def test_call_log_counts_actions_and_outcomes(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("realistic")
    (fresh,) = launch(ec2)
    with pytest.raises(ClientError):
        ec2.describe_instances(InstanceIds=[fresh])
    calls = _get(f"{emu.endpoint_url}/_steadyscale/calls")
    assert calls["total"] == 2
    assert calls["by_action"] == {
        "RunInstances": {"ok": 1},
        "DescribeInstances": {"InvalidInstanceID.NotFound": 1},
    }
    assert calls["records"][0]["instances"] == 1
    assert all(r["latency_ms"] >= 0 for r in calls["records"])


def test_faults_and_interruptions_can_be_requested_over_http(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (spot,) = launch(ec2, InstanceMarketOptions={"MarketType": "spot"})
    answer = _post(f"{emu.endpoint_url}/_steadyscale/interrupt", {"instance_ids": [spot]})
    assert answer == {"interrupted": [spot]}
    _post(
        f"{emu.endpoint_url}/_steadyscale/faults",
        {"fault": "server_error", "action": "DescribeInstances"},
    )
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert error_code(caught.value) in ("InternalError", "Unavailable")


def test_bad_control_requests_get_a_clear_answer(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    with pytest.raises(urllib.error.HTTPError) as caught:
        _post(f"{emu.endpoint_url}/_steadyscale/faults", {"fault": "meteor"})
    assert caught.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(f"{emu.endpoint_url}/_steadyscale/nothing")
    assert missing.value.code == 404
    assert _get(f"{emu.endpoint_url}/_steadyscale/health")["ok"] is True
    assert _get(f"{emu.endpoint_url}/_steadyscale/settings")["profile"] == "none"
