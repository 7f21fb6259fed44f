"""Logs: each state change of a node logged once with its reason; JSON lines on request;
no credential, token or user data in the output, even at debug level."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from steadyscale.core.lifecycle import NodeRecord, NodeUpdate, Status
from steadyscale.emulator import Emulator
from steadyscale.ops.logs import REDACTED, LogFormat, configure_logging, redact
from tests.cluster import make_cluster

FAKE_KEY_ID = "AKIAFAKEFAKEFAKE1234"
FAKE_SECRET = "fAkEsEcReT/0123456789abcdefghijklmnopqrstu"
FAKE_TOKEN = "FwoGZXIvYXdzEFAKESESSIONTOKENvalue0123456789"
USER_DATA = "#!/bin/sh\necho db-password=hunter2-very-secret\n"


def test_every_state_change_is_logged_once_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = make_cluster("realistic")
    caplog.set_level(logging.INFO, logger="steadyscale.lifecycle")
    cluster.demand(4)
    cluster.run(lambda r: r.capacity_met, max_ticks=40)
    cluster.demand(0)
    cluster.run(lambda r: r.settled and not cluster.alive(), max_ticks=80)
    logged: dict[str, list[tuple[str, str, str]]] = {}
    for record in caplog.records:
        if record.name == "steadyscale.lifecycle":
            logged.setdefault(record.__dict__["node_id"], []).append(
                (
                    record.__dict__["from_status"],
                    record.__dict__["to_status"],
                    record.__dict__["reason"],
                )
            )
    assert set(logged) == set(cluster.autoscaler.records)
    for node_id, node in cluster.autoscaler.records.items():
        # The first history entry is the node's creation (queued), not a change.
        moves = [
            (before.status.value, after.status.value, after.reason)
            for before, after in zip(node.history, node.history[1:], strict=False)
        ]
        assert logged[node_id] == moves, node_id
        assert all(reason for _, _, reason in moves)


def test_json_lines_carry_the_move_and_its_reason() -> None:
    out = io.StringIO()
    handler = configure_logging(level="info", log_format="json", stream=out, environ={})
    try:
        node = NodeRecord(
            node_id="n-1",
            node_type="cpu",
            status=Status.PENDING,
            created_at=0,
            instance_id="i-0abc",
        )
        node.move(Status.RUNNING, 5.0, "EC2 shows it running", NodeUpdate(running_at=5.0))
    finally:
        logging.getLogger().removeHandler(handler)
    line = json.loads(out.getvalue().strip())
    assert line["level"] == "info" and line["logger"] == "steadyscale.lifecycle"
    assert (
        line["node_id"],
        line["instance_id"],
        line["from_status"],
        line["to_status"],
        line["reason"],
    ) == ("n-1", "i-0abc", "pending", "running", "EC2 shows it running")
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize("log_format", ["json", "human"])
def test_extra_fields_and_arguments_are_redacted_in_every_format(log_format: LogFormat) -> None:
    out = io.StringIO()
    handler = configure_logging(
        level="info",
        log_format=log_format,
        stream=out,
        environ={"AWS_SECRET_ACCESS_KEY": FAKE_SECRET},
    )
    handler.setFormatter(
        handler.formatter
        if log_format == "json"
        else logging.Formatter("%(message)s %(reason)s %(note)s")
    )
    reason = f"password=hunter2 launch refused; key {FAKE_KEY_ID}"
    try:
        logging.getLogger("steadyscale.test").info(
            "moved: %s",
            f"token={FAKE_TOKEN}",
            extra={"reason": reason, "note": f"secret {FAKE_SECRET}", "count": 3},
        )
    finally:
        logging.getLogger().removeHandler(handler)
    text = out.getvalue()
    for secret in ("hunter2", FAKE_KEY_ID, FAKE_TOKEN, FAKE_SECRET):
        assert secret not in text
    assert "launch refused" in text and REDACTED in text
    if log_format == "json":
        line = json.loads(text)
        assert line["reason"] == f"password={REDACTED} launch refused; key {REDACTED}"
        assert line["count"] == 3


def test_redaction_covers_keys_tokens_signatures_and_user_data() -> None:
    text = (
        f"Credential={FAKE_KEY_ID}/20260101/us-east-1/ec2/aws4_request, "
        "Signature=" + "ab" * 32 + f" 'X-Amz-Security-Token': b'{FAKE_TOKEN}' "
        f"{{'UserData': 'IyEvYmluL3No'}} UserData=IyEvYmluL3No&Version=2016 "
        f"key {FAKE_KEY_ID} secret {FAKE_SECRET}"
    )
    clean = redact(text, [FAKE_SECRET])
    for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN, "IyEvYmluL3No", "ab" * 32):
        assert secret not in clean
    assert "Version=2016" in clean and clean.count(REDACTED) >= 7


def test_a_debug_run_with_credentials_in_the_environment_logs_no_secret(
    tmp_path: Path, ec2_emulator: Emulator
) -> None:
    config = {
        "cluster_name": "secrets",
        "loop_interval_seconds": 0.3,
        "idle_timeout_minutes": 0.01,
        "provider": {"type": "aws", "endpoint_url": ec2_emulator.endpoint_url},
        "available_node_types": {
            "cpu": {
                "node_config": {
                    "InstanceType": "m5.large",
                    "ImageId": "ami-12345678",
                    "UserData": USER_DATA,
                },
                "resources": {"CPU": 2},
            }
        },
        "scenario": [
            {"at_seconds": 0, "demand": [{"bundle": {"CPU": 2}, "count": 2}]},
            {"at_seconds": 1, "demand": []},
        ],
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_SESSION_TOKEN=FAKE_TOKEN,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "steadyscale",
            "--log-level",
            "debug",
            "run",
            str(path),
            "--log-format",
            "json",
            "--max-seconds",
            "60",
            "--metrics",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    # The run did what it should, and its debug log is there (botocore's included).
    assert '"to_status": "running"' in result.stderr
    assert "botocore" in result.stderr and REDACTED in result.stderr
    encoded = base64.b64encode(USER_DATA.encode()).decode()
    for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN, "hunter2", encoded, encoded[:16]):
        assert secret not in output, secret
    for line in result.stderr.splitlines():
        json.loads(line)  # every log line is one JSON object
