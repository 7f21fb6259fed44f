"""`steadyscale events setup|teardown` against the emulator (SQS and EventBridge on its
endpoint, as any endpoint the config names): the queue, its policy and the rules made
idempotently and said; EC2's events then reach the queue; teardown removes them; the IAM
policy grants exactly what the daemon and the setup call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.app.eventsource import open_inbox
from steadyscale.app.runtime import open_runtime
from steadyscale.config import parse_config
from steadyscale.emulator import Emulator
from steadyscale.ops.iam import build_policy
from steadyscale.providers.event_rules import rule_names, rule_prefix
from steadyscale.providers.event_setup import EventSetup
from steadyscale.providers.sqs import SqsQueue
from steadyscale.retries.clock import FakeClock
from tests.conftest import FakeEmulator, launch

QUEUE = "steadyscale-events"
RULES = [f"steadyscale-c1-{s}" for s in ("state-change", "spot-interruption", "rebalance")] + [
    "steadyscale-c1-scheduled-change"
]


def _config(endpoint: str | None, **events: Any) -> dict[str, Any]:
    return {
        "cluster_name": "c1",
        "provider": {"type": "aws", "region": "us-east-1", "endpoint_url": endpoint},
        "events": {"queue_name": QUEUE, **events},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 4,
            }
        },
    }


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def _write(tmp_path: Path, config: dict[str, Any]) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.strip().splitlines()


def test_setup_makes_queue_policy_and_rules_once_and_events_then_arrive(
    fake_emulator: FakeEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credentials: None,
) -> None:
    emu, clock, ec2 = fake_emulator("none")
    path = _write(tmp_path, _config(emu.endpoint_url))
    assert main(["events", "setup", path]) == 0
    first = _lines(capsys)
    url = f"{emu.endpoint_url}/{emu.app.account_id}/{QUEUE}"
    assert first[0] == f"queue {QUEUE}: created ({url})"
    assert first[1:5] == [f"rule {name}: created" for name in RULES]
    assert first[5] == f"queue policy {QUEUE}: created (events.amazonaws.com may send from 4 rules)"
    assert first[6:10] == [f"target {name}: created (-> {QUEUE})" for name in RULES]
    assert first[10] == "10 made or updated, 0 already in place"
    assert main(["events", "setup", path]) == 0
    again = _lines(capsys)
    assert [line.split(": ")[1].split(" ")[0] for line in again[:10]] == ["exists"] * 10
    assert again[10] == "0 made or updated, 10 already in place"

    sqs = emu.client(service="sqs")
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])[
        "Attributes"
    ]["Policy"])  # fmt: skip
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == f"arn:aws:sqs:us-east-1:{emu.app.account_id}:{QUEUE}"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == sorted(
        f"arn:aws:events:us-east-1:{emu.app.account_id}:rule/{name}" for name in RULES
    )

    # Every event type reaches the queue through the rules made.
    (iid,) = launch(ec2, InstanceMarketOptions={"MarketType": "spot"})
    emu.recommend_rebalance([iid])
    emu.warn([iid])
    emu.retire([iid], lead=600)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    kinds = [json.loads(m["Body"])["detail-type"] for m in got]
    assert kinds == [
        "EC2 Instance State-change Notification",
        "EC2 Instance State-change Notification",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Spot Instance Interruption Warning",
        "AWS Health Event",
    ]


def test_setup_puts_back_a_rule_changed_by_hand(
    fake_emulator: FakeEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credentials: None,
) -> None:
    emu, _, _ = fake_emulator("none")
    path = _write(tmp_path, _config(emu.endpoint_url))
    main(["events", "setup", path])
    capsys.readouterr()
    bus = emu.client(service="events")
    bus.disable_rule(Name=RULES[1])
    bus.remove_targets(Rule=RULES[2], Ids=["steadyscale-queue"])
    assert main(["events", "setup", path]) == 0
    lines = _lines(capsys)
    assert f"rule {RULES[1]}: updated" in lines
    assert f"target {RULES[2]}: created (-> {QUEUE})" in lines
    assert lines[-1] == "2 made or updated, 8 already in place"
    assert bus.describe_rule(Name=RULES[1])["State"] == "ENABLED"


def test_teardown_removes_rules_and_queue_and_says_what_was_absent(
    fake_emulator: FakeEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    credentials: None,
) -> None:
    emu, _, _ = fake_emulator("none")
    path = _write(tmp_path, _config(emu.endpoint_url))
    main(["events", "setup", path])
    capsys.readouterr()
    assert main(["events", "teardown", path, "--keep-queue"]) == 0
    lines = _lines(capsys)
    assert lines[:4] == [f"rule {name}: deleted" for name in RULES]
    assert lines[4].startswith(f"queue {QUEUE}: kept")
    assert emu.client(service="events").list_rules()["Rules"] == []
    assert main(["events", "teardown", path]) == 0
    lines = _lines(capsys)
    assert lines[:4] == [f"rule {name}: absent" for name in RULES]
    assert lines[4].startswith(f"queue {QUEUE}: deleted")
    assert emu.client(service="sqs").list_queues().get("QueueUrls", []) == []
    assert main(["events", "teardown", path]) == 0
    assert _lines(capsys)[4] == f"queue {QUEUE}: absent"


def test_setup_needs_an_events_block_and_a_reachable_provider(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(None)
    del config["events"]
    assert main(["events", "setup", _write(tmp_path, config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no events block" in err[0]
    config = _config(None)
    config["provider"] = {"type": "emulator", "region": "us-east-1"}
    assert main(["events", "teardown", _write(tmp_path, config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sets its queue and rules up itself" in err[0]


def test_setup_against_an_endpoint_that_is_not_there_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], credentials: None
) -> None:
    path = _write(tmp_path, _config("http://127.0.0.1:9"))
    assert main(["events", "setup", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("steadyscale: error:")


def test_the_embedded_emulator_sets_its_queue_up_itself(tmp_path: Path) -> None:
    config = _config(None)
    # Its long polls wait in emulated seconds: 20 of them are 0.2 real ones here.
    config["provider"] = {
        "type": "emulator",
        "region": "us-east-1",
        "emulator": {"time_scale": 0.01},
    }
    config["ledger"] = str(tmp_path / "ledger.db")
    runtime = open_runtime(parse_config(config), None, clock=FakeClock())
    try:
        assert open_inbox(runtime) is not None
        emulator = runtime.emulator
        assert isinstance(emulator, Emulator)
        rules = emulator.client(service="events").list_rules()["Rules"]
        assert sorted(r["Name"] for r in rules) == sorted(RULES)
    finally:
        runtime.close()


def _used(emu: Emulator) -> set[str]:
    """The IAM actions of the SQS and EventBridge calls the emulator answered."""
    renamed = {"sqs:DeleteMessageBatch": "sqs:DeleteMessage"}
    return {renamed.get(call, call) for call in emu.app.messaging.calls()}


def _actions(policy: dict[str, Any], *sids: str) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        if statement["Sid"] in sids:
            action = statement["Action"]
            found.update([action] if isinstance(action, str) else action)
    return found


def test_iam_policy_grants_exactly_what_the_daemon_and_the_setup_call(
    ec2_emulator_factory: Any, credentials: None
) -> None:
    setup_emu = ec2_emulator_factory("none")
    config = parse_config(_config(setup_emu.endpoint_url))
    policy = build_policy(config, setup=True)
    sqs, bus = setup_emu.client(service="sqs"), setup_emu.client(service="events")
    EventSetup(config, sqs, bus).setup()
    EventSetup(config, sqs, bus).setup()  # everything exists: the reads only
    EventSetup(config, sqs, bus).teardown()
    EventSetup(config, sqs, bus).teardown()  # nothing left: the reads of absence
    assert _used(setup_emu) == _actions(policy, "EventsSetupQueue", "EventsSetupRules")
    rules = [s for s in policy["Statement"] if s["Sid"] == "EventsSetupRules"]
    assert rules[0]["Resource"] == f"arn:aws:events:us-east-1:*:rule/{rule_prefix('c1')}-*"

    daemon_emu = ec2_emulator_factory("none")
    config = parse_config(_config(daemon_emu.endpoint_url))
    sqs = daemon_emu.client(service="sqs")
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    before = _used(daemon_emu)
    queue = SqsQueue(
        region="us-east-1",
        queue_name=QUEUE,
        endpoint_url=daemon_emu.endpoint_url,
        credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    )
    queue.delete([m.receipt for m in queue.receive(max_messages=10, wait_seconds=0)])
    daemon = build_policy(config)
    read = [s for s in daemon["Statement"] if s["Sid"] == "ReadEventQueue"]
    assert read[0]["Resource"] == f"arn:aws:sqs:us-east-1:*:{QUEUE}"
    assert _used(daemon_emu) - (before - {"sqs:GetQueueUrl"}) == _actions(daemon, "ReadEventQueue")
    by_url = _config(None) | {"events": {"queue_url": f"{daemon_emu.endpoint_url}/1234/{QUEUE}"}}
    assert "sqs:GetQueueUrl" not in _actions(build_policy(parse_config(by_url)), "ReadEventQueue")
    assert rule_names("c1") == RULES


def test_no_events_block_no_event_permissions() -> None:
    config = _config(None)
    del config["events"]
    policy = build_policy(parse_config(config), setup=True)
    assert not {a for a in _actions(policy, *{s["Sid"] for s in policy["Statement"]})} & {
        "sqs:ReceiveMessage",
        "events:PutRule",
    }


def test_long_cluster_names_keep_rule_names_within_64_characters() -> None:
    names = rule_names("c" * 63)
    assert all(len(name) <= 64 for name in names)
    assert len(set(names)) == 4
    assert rule_names("c" * 63) == names
