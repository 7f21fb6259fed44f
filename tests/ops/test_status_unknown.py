"""``status`` names the ledger's id and the cluster instances the ledger cannot explain, as
the daemon last listed them: in the table and in ``--json`` (against the published
schema)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.ops.status import collect_status, render_status
from steadyscale.providers.protocol import LaunchSpec
from tests.cluster import make_cluster

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "status.schema.json").read_text()
)


def test_status_lists_unknown_instances_and_the_ledger_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.db"
    cluster = make_cluster("realistic", ledger_path=str(ledger), listing_interval_seconds=5)
    try:
        node_config = cluster.config.available_node_types["cpu"].node_config
        spec = LaunchSpec("r-x", "ss-r-x", "cpu", 1, node_config, ledger_id="another-ledger")
        [theirs] = cluster.provider.launch(spec).instances
        cluster.run(
            lambda r: bool(collect_status(cluster.config, cluster.ledger).unknown_instances),
            max_ticks=60,
        )
        report = collect_status(cluster.config, cluster.ledger)
        assert report.ledger_id == cluster.ledger.ledger_id
        [entry] = report.unknown_instances
        assert (entry.instance_id, entry.reason, entry.node_type, entry.ledger_id) == (
            theirs.instance_id,
            "other_ledger",
            "cpu",
            "another-ledger",
        )
        text = render_status(report)
        assert "unknown instances: 1 tagged with the cluster that the ledger cannot" in text
        assert f"{theirs.instance_id} (other_ledger)" in text
        config = tmp_path / "cluster.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "cluster_name": "test",
                    "ledger": str(ledger),
                    "provider": {"type": "emulator"},
                    "available_node_types": {
                        "cpu": {"node_config": dict(node_config), "resources": {"CPU": 2}}
                    },
                }
            )
        )
        assert main(["status", str(config), "--json"]) == 0
        printed = json.loads(capsys.readouterr().out)
        jsonschema.validate(printed, SCHEMA)
        assert printed["ledger_id"] == cluster.ledger.ledger_id
        assert printed["unknown_instances"][0]["reason"] == "other_ledger"
    finally:
        cluster.ledger.close()
        cluster.emulator.stop()
