"""``validate`` against a cluster's ledger says what the config will do to its live nodes
(kept, re-labelled, retiring) before the daemon does anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.core.lifecycle import Status
from tests.cluster import Cluster, make_cluster

CPU = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
BIG = {"InstanceType": "m5.xlarge", "ImageId": "ami-12345678"}
GPU = {"InstanceType": "g4dn.xlarge", "ImageId": "ami-12345678"}


def _type(node_config: dict[str, Any], resources: dict[str, float], n: int) -> dict[str, Any]:
    return {"node_config": node_config, "resources": resources, "min_workers": n}


@pytest.fixture
def ran(tmp_path: Path) -> Iterator[Cluster]:
    """A daemon ran with node types cpu, big and gpu; their nodes are up."""
    cluster = make_cluster(
        ledger_path=str(tmp_path / "ledger.db"),
        available_node_types={
            "cpu": _type(CPU, {"CPU": 2}, 2),
            "big": _type(BIG, {"CPU": 4}, 3),
            "gpu": _type(GPU, {"CPU": 4, "GPU": 1}, 1),
        },
    )
    cluster.run(lambda r: r.settled and cluster.count(Status.READY) == 6, max_ticks=60)
    yield cluster
    cluster.ledger.close()
    cluster.emulator.stop()


def _config(tmp_path: Path, cluster: Cluster, types: dict[str, Any]) -> str:
    data = {
        "cluster_name": "test",
        "ledger": str(tmp_path / "ledger.db"),
        "provider": {"type": "aws", "endpoint_url": cluster.emulator.endpoint_url},
        "available_node_types": types,
    }
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_validate_says_what_a_config_change_does_to_the_live_nodes(
    tmp_path: Path, ran: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = {
        "cpu": _type(CPU, {"CPU": 2}, 2),  # as it was
        "large": _type(BIG, {"CPU": 4}, 3),  # big, renamed
    }  # gpu removed
    before = {r.node_id: r.node_type for r in ran.ledger.nodes()}
    assert main(["validate", _config(tmp_path, ran, changed)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok: cluster test, provider aws")
    assert out[1:] == [
        f"ledger {tmp_path / 'ledger.db'}: 6 live node(s); with this config:",
        "  kept         2 x cpu",
        "  re-labelled  3 x big -> large (same node_config and resources: not replaced)",
        "  retiring     1 x gpu: node type gpu was removed",
        "  a retiring node takes no new demand and is terminated once ready nodes of a "
        "configured type hold its demand; at most 1 replacement(s) start at once "
        "(max_surge 25%)",
    ]
    # Read only: the daemon has not started, nothing changed.
    assert {r.node_id: r.node_type for r in ran.ledger.nodes()} == before


def test_a_changed_node_config_is_said_retiring_with_the_keys_that_changed(
    tmp_path: Path, ran: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    new_image = {**CPU, "ImageId": "ami-87654321"}
    changed = {
        "cpu": _type(new_image, {"CPU": 2}, 2),
        "big": _type(BIG, {"CPU": 4}, 3),
        "gpu": _type(GPU, {"CPU": 4, "GPU": 1}, 1),
    }
    assert main(["validate", _config(tmp_path, ran, changed)]) == 0
    out = capsys.readouterr().out
    assert "  kept         3 x big\n  kept         1 x gpu\n" in out
    assert "  retiring     2 x cpu: node type cpu's node_config changed (ImageId)\n" in out


def test_without_a_ledger_validate_says_what_it_always_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = {
        "cluster_name": "test",
        "provider": {"type": "aws", "endpoint_url": "http://127.0.0.1:9"},
        "available_node_types": {"cpu": _type(CPU, {"CPU": 2}, 0)},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("ok: cluster test, provider aws")
