"""The cluster config: valid files load; every bad one is one line naming the key path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from steadyscale.app.cli import main
from steadyscale.app.loading import model_settings, parse_cluster_config
from steadyscale.config import (
    DatabaseURL,
    check_replica_id,
    default_replica_id,
    ledger_location,
    ledger_path,
    load_config,
    parse_config,
)
from steadyscale.core.resources import parse_amounts
from steadyscale.errors import ConfigError
from tests.cluster import cluster_config

ROOT = Path(__file__).resolve().parents[2]


def _base() -> dict[str, Any]:
    return {
        "cluster_name": "c",
        "provider": {"type": "aws", "region": "eu-west-1", "subnets": ["subnet-1"]},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-1"},
                "resources": {"CPU": 2},
                "max_workers": 4,
            },
        },
    }


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_cluster_config(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_quickstart_config_is_valid() -> None:
    config = load_config(ROOT / "examples" / "quickstart.yaml")
    assert config.provider.type == "emulator"
    assert model_settings(config).profile == "realistic"
    assert config.scenario[0].demand[0].count == 24


def test_defaults_are_those_documented() -> None:
    config = parse_config(_base())
    assert config.loop_interval_seconds == 5
    assert config.lookup_deadline_seconds == 5
    assert config.idle_timeout_seconds == 300
    assert config.available_node_types["cpu"].priority == 0


def test_unknown_key_names_its_path() -> None:
    data = _base()
    data["available_node_types"]["cpu"]["resourcez"] = {"CPU": 1}
    assert (
        _error(data) == "available_node_types.cpu.resourcez: unknown key (check the "
        "spelling; see the documented settings)"
    )


def test_wrong_type_names_its_path() -> None:
    data = _base()
    data["max_workers"] = "lots"
    assert _error(data).startswith("max_workers: Input should be a valid integer")


def test_min_above_max_is_refused() -> None:
    data = _base()
    data["available_node_types"]["cpu"]["min_workers"] = 5
    assert _error(data) == ("available_node_types.cpu: min_workers (5) must be <= max_workers (4)")


def test_unknown_instance_type_is_refused() -> None:
    data = _base()
    data["available_node_types"]["cpu"]["node_config"]["InstanceType"] = "m5.hyuge"
    assert (
        "available_node_types.cpu.node_config.InstanceType: unknown instance type "
        "'m5.hyuge'" in _error(data)
    )


def test_node_config_needs_an_image_and_may_not_set_counts() -> None:
    data = _base()
    del data["available_node_types"]["cpu"]["node_config"]["ImageId"]
    assert "ImageId is required" in _error(data)
    data = _base()
    data["available_node_types"]["cpu"]["node_config"]["MaxCount"] = 3
    assert "MaxCount is set by steadyscale" in _error(data)


def test_scenario_bundle_no_node_type_fits() -> None:
    data = _base()
    data["scenario"] = [{"at_seconds": 0, "demand": [{"bundle": {"GPU": 1}, "count": 1}]}]
    assert "no node type can fit bundle {GPU: 1}" in _error(data)


def test_bad_emulator_knob_is_named_under_provider() -> None:
    data = _base()
    data["provider"] = {"type": "emulator", "emulator": {"visibility": {"median": -1}}}
    assert _error(data).startswith("provider.emulator.visibility.median: ")


def test_bad_subnet_and_url_and_cluster_name() -> None:
    data = _base()
    data["provider"]["subnets"] = ["sn-1"]
    assert "'sn-1' is not a subnet id" in _error(data)
    data = _base()
    data["provider"]["endpoint_url"] = "localhost:4566"
    assert "is not an http(s) URL" in _error(data)
    data = _base()
    data["cluster_name"] = "my cluster"
    assert _error(data).startswith("cluster_name: ")


def test_min_workers_beyond_cluster_max() -> None:
    data = _base()
    data["max_workers"] = 1
    data["available_node_types"]["cpu"]["min_workers"] = 2
    assert "min_workers add up to 2" in _error(data)


def test_malformed_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("cluster_name: [\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "none.yaml")


def test_ledger_lives_beside_the_config_unless_set(tmp_path: Path) -> None:
    config = cluster_config()
    assert ledger_path(config, tmp_path / "c.yaml") == tmp_path / ".steadyscale" / "test.db"
    config = cluster_config(ledger="state/l.db")
    assert ledger_path(config, tmp_path / "c.yaml") == tmp_path / "state" / "l.db"


def test_a_ledger_url_is_a_database_and_never_a_path(tmp_path: Path) -> None:
    url = "postgresql://steadyscale:s3cret@db.internal:5433/cluster_a?sslmode=require"
    found = ledger_location(cluster_config(ledger=url), tmp_path / "c.yaml")
    assert isinstance(found, DatabaseURL) and found.secret == url
    assert str(found) == "postgresql://steadyscale:***@db.internal:5433/cluster_a?sslmode=require"
    assert found.database == "cluster_a"
    also = ledger_location(cluster_config(ledger="postgres://db/x"), tmp_path / "c.yaml")
    assert isinstance(also, DatabaseURL)
    relative = ledger_location(cluster_config(ledger="state/l.db"), tmp_path / "c.yaml")
    assert relative == tmp_path / "state" / "l.db"
    with pytest.raises(ConfigError, match=r"ledger postgresql://steadyscale:\*\*\*@db.internal"):
        ledger_path(cluster_config(ledger=url), tmp_path / "c.yaml")  # a file only


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        ("mysql://u:s3cret@h/db", "must start with postgresql:// or postgres://, not mysql://"),
        ("postgresql://u:s3cret@h:5432", "no database"),
        ("postgresql://u:s3cret@h:port/db", "not a valid URL"),
        ("postgresql://u:s3cret@/db", "no host"),
    ],
)
def test_a_bad_ledger_url_is_one_line_without_its_password(ledger: str, expected: str) -> None:
    message = _error({**_base(), "ledger": ledger})
    assert message.startswith("ledger: ") and expected in message, message
    assert "s3cret" not in message and "\n" not in message


def test_name_amount_pairs_are_parsed_in_one_place() -> None:
    assert parse_amounts("CPU=4, GPU=1") == {"CPU": 4, "GPU": 1}
    assert parse_amounts("CPU=4;GPU=0.5", separators=";,") == {"CPU": 4, "GPU": 0.5}
    for bad, part in [
        ("CPU=4,GPU", "'GPU'"),
        ("=2", "'=2'"),
        ("CPU=-1", "'CPU=-1'"),
        ("CPU=inf", "'CPU=inf'"),
        ("CPU=nan", "'CPU=nan'"),
        ("", "''"),
    ]:
        with pytest.raises(ValueError) as error:
            parse_amounts(bad)
        assert str(error.value) == part


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["request", "{config}", "--bundle", "CPU=2,GPU", "--count", "1"],
            "bundle 'CPU=2,GPU': write resources as NAME=AMOUNT pairs, e.g. CPU=4,GPU=1 "
            "(not 'GPU')",
        ),
        (
            ["simulate", "--config", "{config}", "--trace", "burst", "--price", "m5.large=x"],
            "--price 'm5.large=x': write TYPE=DOLLARS_PER_HOUR, e.g. m5.large=0.096 (not "
            "'m5.large=x')",
        ),
    ],
)
def test_the_cli_names_the_pair_that_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "cluster_name": "c",
                "provider": {"type": "memory"},
                "available_node_types": {
                    "cpu": {
                        "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                        "resources": {"CPU": 2},
                    }
                },
            }
        )
    )
    assert main([a.format(config=config) for a in args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_the_ha_block_is_off_by_default_and_its_lease_defaults_to_15s_5s_2s() -> None:
    assert parse_cluster_config(_base()).ha is None  # no replicas unless asked for
    ha = parse_cluster_config({**_base(), "ha": {}}).ha
    assert ha is not None
    assert (ha.lease_ttl_seconds, ha.renew_interval_seconds, ha.margin_seconds) == (15, 5, 2)
    assert ha.replica_id is None
    ha = parse_cluster_config({**_base(), "ha": {"replica_id": "east-1"}}).ha
    assert ha is not None and ha.replica_id == "east-1"


@pytest.mark.parametrize(
    ("ha", "expected"),
    [
        ({"margin_seconds": 15}, "margin_seconds (15) must be below lease_ttl_seconds (15)"),
        ({"renew_interval_seconds": 13}, "renew_interval_seconds (13) must be below"),
        ({"replica_id": "a b"}, "replica id 'a b': use letters, digits"),
        ({"lease_ttl": 3}, "ha.lease_ttl"),
    ],
)
def test_a_bad_ha_block_is_one_line_naming_what_to_fix(ha: dict[str, Any], expected: str) -> None:
    assert expected in _error({**_base(), "ha": ha})


def test_the_default_replica_id_is_the_host_and_the_pid() -> None:
    replica = default_replica_id()
    assert replica.endswith(f"-{os.getpid()}") and check_replica_id(replica) == replica
