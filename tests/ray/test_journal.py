"""The Ray provider's state file: what it keeps across a restart, and files written by the
versions before its schema had a version, which open with their data."""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from steadyscale.ray.journal import (
    SCHEMA,
    LaunchIntent,
    PendingLaunch,
    PendingTermination,
    StateFile,
)
from steadyscale.store.sqlite import StoreError

LAUNCH = PendingLaunch(
    instance_id="i-0a", tags={"ray-node-kind": "worker"}, private_ip="10.0.0.1", launched_at=5.0
)
INTENT = LaunchIntent(
    request_id="r-1",
    client_token="ray-r-1",
    node_type="cpu",
    count=2,
    node_config={"InstanceType": "m5.large"},
    subnet_id=None,
    tags={"ray-cluster-name": "c1"},
    created_at=3.0,
)


def _unversioned_file(path: Path, *, lifecycle: bool, intents: bool) -> None:
    """A state file as the provider wrote it before the schema had versions: no meta
    table; ``launches`` with a ``lifecycle`` column or not; ``intents`` or not."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE launches (instance_id TEXT PRIMARY KEY, tags TEXT NOT NULL, "
        f"private_ip TEXT, launched_at REAL NOT NULL{', lifecycle TEXT' if lifecycle else ''})"
    )
    db.execute(
        "CREATE TABLE terminations (instance_id TEXT PRIMARY KEY, action TEXT NOT NULL, "
        "since REAL NOT NULL)"
    )
    row = ["i-0a", json.dumps(LAUNCH.tags), "10.0.0.1", 5.0] + (["spot"] if lifecycle else [])
    db.execute(f"INSERT INTO launches VALUES ({', '.join('?' for _ in row)})", row)
    db.execute("INSERT INTO terminations VALUES ('i-0b', 'StopInstances', 7.0)")
    if intents:
        db.execute("CREATE TABLE intents (request_id TEXT PRIMARY KEY, intent TEXT NOT NULL)")
        db.execute(
            "INSERT INTO intents VALUES (?, ?)",
            ("r-1", json.dumps(asdict(INTENT), sort_keys=True)),
        )
    db.commit()
    db.close()


def _schema_version(path: Path) -> str:
    db = sqlite3.connect(path)
    (value,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    return str(value)


def test_what_is_written_is_read_back_by_a_new_state_file(tmp_path: Path) -> None:
    first = StateFile(tmp_path / "s.sqlite")
    first.add_launches([LAUNCH])
    first.add_intent(INTENT)
    first.add_terminations([PendingTermination("i-0b", "TerminateInstances", 7.0)])
    first.add_terminations([PendingTermination("i-0b", "TerminateInstances", 9.0)])
    first.close()

    again = StateFile(tmp_path / "s.sqlite")

    assert again.launches() == [LAUNCH]
    assert again.intents() == [INTENT]
    assert again.terminations() == [PendingTermination("i-0b", "TerminateInstances", 7.0)]
    again.forget_launches(["i-0a"])
    again.forget_intents(["r-1"])
    again.forget_terminations(["i-0b"])
    assert (again.launches(), again.intents(), again.terminations()) == ([], [], [])
    assert _schema_version(tmp_path / "s.sqlite") == str(SCHEMA.version)


@pytest.mark.parametrize(
    ("lifecycle", "intents"), [(False, False), (True, False), (True, True), (False, True)]
)
def test_a_file_from_before_schema_versions_opens_with_its_data(
    tmp_path: Path, lifecycle: bool, intents: bool
) -> None:
    path = tmp_path / "old.sqlite"
    _unversioned_file(path, lifecycle=lifecycle, intents=intents)

    state = StateFile(path)

    expected = PendingLaunch(
        instance_id="i-0a",
        tags=LAUNCH.tags,
        private_ip="10.0.0.1",
        launched_at=5.0,
        lifecycle="spot" if lifecycle else None,
    )
    assert state.launches() == [expected]
    assert state.terminations() == [PendingTermination("i-0b", "StopInstances", 7.0)]
    assert state.intents() == ([INTENT] if intents else [])
    state.add_launches([PendingLaunch("i-0c", {}, None, 8.0, lifecycle="on-demand")])
    state.add_intent(INTENT)
    kept = state.launches()
    assert {p.lifecycle for p in kept} == {expected.lifecycle, "on-demand"}
    state.close()
    assert _schema_version(path) == str(SCHEMA.version)
    assert StateFile(path).launches() == kept


def test_a_damaged_state_file_is_an_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"not a database" * 100)

    with pytest.raises(StoreError, match=r"state file .* is unreadable"):
        StateFile(path)

    assert path.read_bytes().startswith(b"not a database")


def test_a_state_file_has_an_id_kept_across_opens_and_knows_when_it_is_new(
    tmp_path: Path,
) -> None:
    first = StateFile(tmp_path / "s.sqlite")
    first.close()

    again = StateFile(tmp_path / "s.sqlite")

    assert first.is_new and not again.is_new
    assert uuid.UUID(first.ledger_id).version == 4
    assert again.ledger_id == first.ledger_id
    assert StateFile(tmp_path / "other.sqlite").ledger_id != first.ledger_id
    assert StateFile(":memory:").is_new


def test_a_file_from_before_state_files_had_an_id_gets_one_and_is_not_new(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    _unversioned_file(path, lifecycle=True, intents=True)

    state = StateFile(path)

    assert not state.is_new
    assert uuid.UUID(state.ledger_id).version == 4
    state.close()
    assert StateFile(path).ledger_id == state.ledger_id
