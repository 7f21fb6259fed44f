"""The control API's event paths: ground truth of events, and warnings, rebalance
recommendations, retirements and impaired checks triggered over HTTP; bad input is a 400
naming the field."""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest

from tests.conftest import FakeEmulator, launch
from tests.emulator.test_control_api import _get, _post

SPOT: dict[str, Any] = {"InstanceMarketOptions": {"MarketType": "spot"}}


def test_events_and_triggers_over_http(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (iid,) = launch(ec2, **SPOT)
    base = f"{emu.endpoint_url}/_steadyscale"
    assert _post(f"{base}/warn", {"instance_ids": [iid]}) == {"warned": [iid]}
    assert _post(f"{base}/rebalance", {"instance_ids": [iid]}) == {"recommended": [iid]}
    assert _post(f"{base}/impair", {"instance_ids": [iid]}) == {
        "instance_ids": [iid],
        "impaired": True,
    }
    answer = _post(f"{base}/retire", {"instance_ids": [iid], "lead_seconds": 30})
    assert answer == {"retiring": [iid]}
    events = _get(f"{base}/events")["events"]
    kinds = [e["event"]["detail-type"] for e in events]
    assert kinds == [
        "EC2 Instance State-change Notification",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
        "EC2 Instance Rebalance Recommendation",
        "AWS Health Event",
    ]
    last = _get(f"{base}/events?limit=1")
    assert [e["event"]["detail-type"] for e in last["events"]] == ["AWS Health Event"]
    assert last["total"] == 5 and last["by_type"]["EC2 Instance State-change Notification"] == 2
    assert last["lost"] == last["duplicated"] == last["reordered"] == last["undelivered"] == 0
    clock.advance(30)  # the retirement's deadline comes before the interruption
    truth = _get(f"{base}/truth?include_gone=1")["instances"][0]
    assert truth["state"] == "terminated" and not truth["interrupted"]
    assert truth["impaired"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("warn", {"instance_ids": "i-1"}, "instance_ids: give a list"),
        ("retire", {"instance_ids": [], "lead_seconds": "soon"}, "lead_seconds: give a number"),
        ("retire", {"instance_ids": [], "lead_seconds": -1}, "lead_seconds: give a number"),
        ("impair", {"instance_ids": [], "impaired": "yes"}, "impaired: give true or false"),
        ("rebalance", {"instance_ids": [], "when": 1}, "unknown field"),
    ],
)
def test_bad_event_triggers_are_one_clear_400(
    fake_emulator: FakeEmulator, path: str, body: dict[str, Any], message: str
) -> None:
    emu, _, _ = fake_emulator("none")
    with pytest.raises(urllib.error.HTTPError) as caught:
        _post(f"{emu.endpoint_url}/_steadyscale/{path}", body)
    assert caught.value.code == 400
    assert message in json.loads(caught.value.read())["error"]
