"""The commands on a PostgreSQL ledger (``ledger: postgresql://...``): request, status,
validate and iam-policy read and write the database; every daemon on it is a replica
(one leads); the commands that write it refuse while one leads; a renamed cluster is
carried over in place; the URL's password is never printed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.config import DatabaseURL
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.core.resources import DemandItem
from steadyscale.store.ledger import Ledger
from steadyscale.store.ownership import claim
from steadyscale.testing.postgres import PostgresServer

COMMAND = [sys.executable, "-m", "steadyscale"]
SECRET = "s3cr3t-pw"
SHORT = ["--max-seconds", "4", "--json"]


def _with_password(url: str) -> str:
    # (The test server trusts 127.0.0.1, so any password is accepted: it is only carried.)
    return url.replace("steadyscale@", f"steadyscale:{SECRET}@")


def _config(tmp_path: Path, ledger: str, **overrides: Any) -> Path:
    data: dict[str, Any] = {
        "cluster_name": "pg",
        "ledger": ledger,
        "provider": {"type": "emulator", "emulator": {"profile": "realistic", "seed": 3}},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 10,
            },
        },
    }
    data.update(overrides)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_request_status_validate_and_iam_policy_use_the_database(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _with_password(postgres)
    config = _config(tmp_path, url)
    assert main(["status", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no ledger at postgresql://steadyscale:***@127.0.0.1:" in err and SECRET not in err
    assert not (tmp_path / ".steadyscale").exists()  # a URL is never taken for a path

    ledger = Ledger(url)
    ledger.save_nodes(
        [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
    )
    claim(ledger, config_file="/elsewhere/old.yaml", cluster_name="old")
    claim(ledger, config_file=str(config.resolve()), cluster_name="pg")  # carried in place
    ledger.close()

    assert main(["request", str(config), "--bundle", "CPU=2", "--count", "3"]) == 0
    assert main(["status", str(config)]) == 0
    assert main(["status", str(config), "--json"]) == 0
    assert main(["validate", str(config)]) == 0
    assert main(["iam-policy", str(config)]) == 0
    out = capsys.readouterr().out
    assert "demand: 3 x {CPU: 2}" in out
    assert '"pending_demand":3' in out  # (the --json report)
    assert "steadyscale:cluster" in out and '"old"' in out  # the carried tag's policy
    assert SECRET not in out


def test_a_database_that_cannot_be_reached_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://steadyscale:{SECRET}@127.0.0.1:1/ledger"
    config = _config(tmp_path, url)
    for command in ("status", "request", "iam-policy"):
        extra = ["--clear"] if command == "request" else []
        assert main([command, str(config), *extra]) == 2, command
        err = capsys.readouterr().err
        assert err.startswith("steadyscale: error: ledger postgresql://steadyscale:***@"), err
        assert "is unavailable" in err and err.count("\n") == 1 and SECRET not in err


def _until_leading(daemon: subprocess.Popen[str]) -> str:
    """What ``daemon`` printed up to and including its line saying it leads."""
    assert daemon.stdout is not None
    seen = ""
    while "leading with lease epoch" not in seen:
        line = daemon.stdout.readline()
        assert line, f"it ended without leading: {seen}"
        seen += line
    return seen


@pytest.mark.parametrize("first_has_ha", [False, True])
def test_a_daemon_without_ha_and_a_replica_on_one_database_never_both_act(
    tmp_path: Path, postgres: str, first_has_ha: bool
) -> None:
    # I8: a daemon without an ha section is a replica too, whatever runs beside it; the
    # first leads, the second follows (it never ticks) until it stops.
    url = _with_password(postgres)
    (tmp_path / "ha").mkdir()
    plain, replica = _config(tmp_path, url), _config(tmp_path / "ha", url, ha={})
    first_config, second_config = (replica, plain) if first_has_ha else (plain, replica)
    first = subprocess.Popen(
        [*COMMAND, "run", str(first_config), "--metrics", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = _until_leading(first)
    assert started.startswith("steadyscale: cluster pg") and "ledger postgresql://" in started
    try:
        second = subprocess.run(
            [*COMMAND, "run", str(second_config), "--metrics", "off", *SHORT],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert "leading" not in second.stdout, second.stdout
        assert json.loads(second.stdout.splitlines()[-1])["ticks"] == 0
        assert SECRET not in second.stderr + second.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert "stopped leading" not in out  # it led throughout
    assert SECRET not in started + out + err


def test_a_renamed_cluster_on_a_database_is_carried_over_in_place(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, postgres, cluster_name="new")
    ledger = Ledger(postgres)
    ledger.save_nodes(
        [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
    )
    claim(ledger, config_file=str(config.resolve()), cluster_name="old")
    ledger.acquire_writer()  # its daemon still runs
    assert main(["ledger", "carry-over", str(config), "--from", "old"]) == 2
    assert "another steadyscale daemon" in capsys.readouterr().err
    ledger.close()

    assert main(["ledger", "carry-over", str(config), "--from", "old"]) == 0
    out = capsys.readouterr().out
    assert f"carried cluster old over to new: ledger {DatabaseURL(postgres)}" in out
    assert "1 live node(s) keep the tag steadyscale:cluster=old" in out
    assert main(["iam-policy", str(config)]) == 0
    assert '"old"' in capsys.readouterr().out


def test_a_fresh_embedded_emulator_empties_a_database_ledger(
    tmp_path: Path, postgres_server: PostgresServer, postgres: str
) -> None:
    from steadyscale.app.loading import load_cluster_config  # noqa: PLC0415
    from steadyscale.app.runtime import open_runtime  # noqa: PLC0415

    ledger = Ledger(postgres)
    ledger.save_nodes(
        [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
    )
    earlier = ledger.ledger_id
    ledger.close()
    config_path = _config(tmp_path, postgres, provider={"type": "memory"})
    runtime = open_runtime(load_cluster_config(str(config_path)), config_path)
    try:
        assert runtime.ledger.nodes(include_terminal=True) == []
        assert runtime.ledger.ledger_id not in (None, earlier)  # a new ledger, a new id
        assert runtime.ledger.meta("schema_version") is not None
        assert runtime.ledger_path == DatabaseURL(postgres)
    finally:
        runtime.ledger.close()


def test_a_renamed_cluster_starting_on_a_database_is_carried_over_by_its_claim(
    tmp_path: Path, postgres: str
) -> None:
    from steadyscale.app.loading import load_cluster_config  # noqa: PLC0415
    from steadyscale.app.renamed import claim_ledger, refuse_if_renamed  # noqa: PLC0415
    from steadyscale.store.ownership import carried  # noqa: PLC0415

    config_path = _config(tmp_path, postgres, cluster_name="new")
    ledger = Ledger(postgres)
    ledger.save_nodes(
        [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
    )
    claim(ledger, config_file=str(config_path.resolve()), cluster_name="old")
    config = load_cluster_config(str(config_path))
    # Nothing lies beside a database, and its URL does not depend on the name: no refusal,
    refuse_if_renamed(config, config_path, DatabaseURL(postgres))
    # and the start carries its live nodes over in place.
    claim_ledger(ledger, config, config_path)
    assert carried(ledger) == {"old": frozenset({"n-1"})}
    ledger.close()


def test_a_file_ledger_is_exported_and_imported_into_a_database_under_its_lock(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _with_password(postgres)
    (tmp_path / "file").mkdir()
    file_config = _config(tmp_path / "file", str(tmp_path / "a.db"))
    ledger = Ledger(tmp_path / "a.db")
    ledger.save_nodes(
        [NodeRecord(node_id="n-1", node_type="cpu", status=Status.READY, created_at=1.0)]
    )
    ledger.set_demand([DemandItem(bundle={"CPU": 2}, count=1)], 5.0)
    ledger.close()
    backup = tmp_path / "backup.json"
    assert main(["ledger", "export", str(file_config), "-o", str(backup)]) == 0
    config = _config(tmp_path, url)
    Ledger(url).close()  # created (empty) by a daemon's first start
    daemon = Ledger(url)
    daemon.acquire_writer()
    assert main(["ledger", "import", str(config), str(backup)]) == 2
    assert "another steadyscale daemon" in capsys.readouterr().err
    daemon.close()

    assert main(["ledger", "import", str(config), str(backup)]) == 0
    out = capsys.readouterr().out
    assert "into ledger postgresql://steadyscale:***@" in out and SECRET not in out
    assert main(["ledger", "export", str(config)]) == 0
    assert capsys.readouterr().out == backup.read_text()  # the same ledger, id and all
    assert [r.node_id for r in Ledger(url, readonly=True).nodes()] == ["n-1"]
