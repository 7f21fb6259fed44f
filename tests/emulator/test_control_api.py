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


def _refused(url: str, body: bytes) -> str:
    """The error of a POST the control API must refuse: a JSON 400, whatever the body."""
    request = urllib.request.Request(url, data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert caught.value.headers["Content-Type"] == "application/json"
    error: str = json.loads(caught.value.read())["error"]
    return error


@pytest.mark.parametrize("path", ["faults", "interrupt", "node-health"])
@pytest.mark.parametrize(
    ("body", "kind"), [(b"[]", "a list"), (b'"x"', 'a string "x"'), (b"null", "null")]
)
def test_a_body_that_is_not_a_json_object_is_a_json_400_on_every_post_path(
    fake_emulator: FakeEmulator, path: str, body: bytes, kind: str
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    error = _refused(f"{emu.endpoint_url}/_steadyscale/{path}", body)
    assert "the body must be a JSON object with " in error and error.endswith(f"got {kind}")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"fault": "timeout", "action": "DescribeInstance"},
            "action 'DescribeInstance' is not an EC2 action (did you mean DescribeInstances?)",
        ),
        ({"fault": "timeout", "action": "LaunchRockets"}, "action 'LaunchRockets' is not an EC2"),
        ({"fault": "timeout", "count": -3}, "count must be from 1 to 100000, got -3"),
        ({"fault": "timeout", "count": 0}, "count must be from 1 to 100000, got 0"),
        ({"fault": "timeout", "count": 3000000}, "count must be from 1 to 100000, got 3000000"),
        (
            {"fault": "timeout", "count": "3"},
            'count: give a whole number of calls, got a string "3"',
        ),
        (
            {"fault": "meteor"},
            'fault: give one of server_error, lost_response, timeout, got "meteor"',
        ),
        ({"action": "RunInstances"}, "fault: required"),
        ({"fault": "timeout", "cout": 3}, 'unknown field "cout"; this path takes fault, action'),
    ],
)
def test_faults_refuses_what_no_call_would_meet_naming_the_field(
    fake_emulator: FakeEmulator, body: dict[str, Any], expected: str
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    error = _refused(f"{emu.endpoint_url}/_steadyscale/faults", json.dumps(body).encode())
    assert expected in error
    ec2.describe_instances()  # nothing was injected


def test_the_most_faults_one_request_may_inject_are_all_met(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    answer = _post(
        f"{emu.endpoint_url}/_steadyscale/faults",
        {"fault": "server_error", "action": "DescribeInstances", "count": 100_000},
    )
    assert answer == {
        "injected": {
            "fault": "server_error",
            "action": "DescribeInstances",
            "count": 100_000,
            "region": "us-east-1",
        }
    }
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert error_code(caught.value) in ("InternalError", "Unavailable")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("interrupt", {"instance_ids": "i-0123456789abcdef0"}),
        ("interrupt", {"instance_ids": [1, 2]}),
        ("interrupt", {}),
        ("node-health", {"instance_ids": "i-0123456789abcdef0", "healthy": False}),
    ],
)
def test_instance_ids_must_be_a_list_of_strings(
    fake_emulator: FakeEmulator, path: str, body: dict[str, Any]
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (spot,) = launch(ec2, InstanceMarketOptions={"MarketType": "spot"})
    error = _refused(f"{emu.endpoint_url}/_steadyscale/{path}", json.dumps(body).encode())
    assert error.startswith("bad request: instance_ids: ")
    assert 'a list of instance ids, e.g. ["i-0123456789abcdef0"]' in error
    assert [i.state for i in emu.truth()] == ["running"]  # nothing interrupted


def test_call_log_names_the_replica_of_each_call_and_when_it_acted(
    fake_emulator: FakeEmulator,
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    r1 = emu.client(user_agent_extra="steadyscale-replica/r1")
    r2 = emu.client(user_agent_extra="other/1 steadyscale-replica/r-2")
    (first,) = launch(r1)
    clock.advance(5)
    r2.terminate_instances(InstanceIds=[first])
    r2.describe_instances()
    ec2.describe_instances()
    records = _get(f"{emu.endpoint_url}/_steadyscale/calls")["records"]
    assert [(r["action"], r["replica"], r["mutation"]) for r in records] == [
        ("RunInstances", "r1", True),
        ("TerminateInstances", "r-2", True),
        ("DescribeInstances", "r-2", False),
        ("DescribeInstances", None, False),
    ]
    run, terminate = records[0], records[1]
    assert run["received_at"] <= run["at"] < terminate["received_at"] <= terminate["at"]
    assert terminate["received_at"] - run["received_at"] == pytest.approx(5)


def test_call_log_gives_only_the_mutations_when_asked(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    r1 = emu.client(user_agent_extra="steadyscale-replica/r1")
    (first,) = launch(r1)
    r1.describe_instances()
    r1.create_tags(Resources=[first], Tags=[{"Key": "k", "Value": "v"}])
    calls = _get(f"{emu.endpoint_url}/_steadyscale/calls?mutations=1")
    assert calls["total"] == 3
    assert [(r["action"], r["replica"]) for r in calls["records"]] == [
        ("RunInstances", "r1"),
        ("CreateTags", "r1"),
    ]


def test_drain_calls_are_recorded_as_ground_truth(fake_emulator: FakeEmulator) -> None:
    emu, clock, ec2 = fake_emulator("none")
    (instance_id,) = launch(ec2)
    clock.advance(7)
    first = _post(f"{emu.endpoint_url}/_steadyscale/drain/{instance_id}", {})
    _post(f"{emu.endpoint_url}/_steadyscale/drain/i-unknown", {})
    assert first == {
        "instance_id": instance_id,
        "region": "us-east-1",
        "at": emu.now(),
        "state": first["state"],
    }
    assert first["state"] in ("pending", "running")
    every = _get(f"{emu.endpoint_url}/_steadyscale/drain")["drains"]
    assert [d["instance_id"] for d in every] == [instance_id, "i-unknown"]
    assert every[1]["state"] is None  # the emulator never had such an instance
    one = _get(f"{emu.endpoint_url}/_steadyscale/drain/{instance_id}")["drains"]
    assert one == [first] == emu.drains(instance_id)
