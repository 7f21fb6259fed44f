"""Bad input a new user meets, on every command: one line on stderr that says what is wrong
and how to fix it, exit code 2, never a traceback."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from steadyscale.app.cli import build_parser, main
from steadyscale.store.ledger import Ledger

# What editors save when they do not save UTF-8: UTF-16 (with its byte-order mark) and
# Latin-1 (an accented letter is one byte that UTF-8 cannot start with).
NOT_UTF8 = {
    "utf-16": (b"\xff\xfebad", "(it starts with a UTF-16 byte-order mark)"),
    "latin-1": (b"cluster_name: caf\xe9\n", "(byte 0xe9 at line 1, column 18)"),
}


def _cluster(tmp_path: Path) -> Path:
    """A valid cluster config with its (empty) ledger, for the commands that read both."""
    path = tmp_path / "cluster.yaml"
    data = {
        "cluster_name": "fine",
        "provider": {"type": "emulator"},
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 2,
            }
        },
    }
    path.write_text(yaml.safe_dump(data))
    (tmp_path / ".steadyscale").mkdir()
    Ledger(tmp_path / ".steadyscale" / "fine.db").close()
    return path


def _one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("encoding", sorted(NOT_UTF8))
@pytest.mark.parametrize(
    "command",
    [
        ["validate", "{bad}"],
        ["run", "{bad}"],
        ["status", "{bad}"],
        ["iam-policy", "{bad}"],
        ["request", "{bad}", "--clear"],
        ["request", "{good}", "--file", "{bad}"],
        ["emulator", "--config", "{bad}"],
        ["simulate", "--config", "{bad}", "--trace", "burst"],
    ],
    ids=" ".join,
)
def test_a_file_that_is_not_utf8_is_one_line_that_says_how_to_convert_it(
    tmp_path: Path, command: list[str], encoding: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content, where = NOT_UTF8[encoding]
    bad = tmp_path / "b.yaml"
    bad.write_bytes(content)
    good = _cluster(tmp_path)
    args = [part.format(bad=bad, good=good) for part in command]
    err = _one_line_exit_2(args, capsys)
    assert f"{bad} is not UTF-8 text {where}; save it as UTF-8" in err
    assert f"-t UTF-8 {bad} > {tmp_path / 'b.utf8.yaml'})" in err


@pytest.mark.parametrize(
    "command", [["validate", "{bad}"], ["request", "{good}", "--file", "{bad}"]]
)
def test_a_control_character_is_one_line_that_says_where(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "b.yaml"
    bad.write_bytes(b"cluster_name: fine\n- count: \x00\n")  # UTF-8, but not YAML's text
    good = _cluster(tmp_path)
    args = [part.format(bad=bad, good=good) for part in command]
    err = _one_line_exit_2(args, capsys)
    assert f"{bad}: character U+0000 at line 2, column 10 is not allowed in YAML" in err


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "0", "-1"])
def test_run_max_seconds_is_a_finite_number_above_zero(
    tmp_path: Path, seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cluster(tmp_path)
    err = _one_line_exit_2(["run", str(config), f"--max-seconds={seconds}"], capsys)
    assert f"--max-seconds must be a finite number of seconds > 0, got {seconds}; " in err


@pytest.mark.parametrize("bundle", ["CPU=2,CPU=4", "CPU=2, GPU=1, CPU =4"])
def test_a_bundle_that_names_a_resource_twice_is_refused_naming_it(
    tmp_path: Path, bundle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cluster(tmp_path)
    err = _one_line_exit_2(["request", str(config), "--bundle", bundle, "--count", "1"], capsys)
    assert f"bundle {bundle!r}: CPU is given twice; give each resource once, e.g. " in err


SIMULATE_CONFIG = {
    "cluster_name": "sim",
    "provider": {"type": "memory"},
    "available_node_types": {
        "cpu": {
            "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
            "resources": {"CPU": 2},
            "max_workers": 4,
        }
    },
}


def _simulate(tmp_path: Path, *args: str) -> list[str]:
    config = tmp_path / "sim.yaml"
    config.write_text(yaml.safe_dump(SIMULATE_CONFIG))
    return ["simulate", "--config", str(config), "--quiet", "--duration", "1m", *args]


@pytest.mark.parametrize(
    ("prices", "text"),
    [
        (["m5.large=0.1,m5.large=0.2"], "m5.large=0.1,m5.large=0.2"),
        (["m5.large=0.1", "m5.large=0.2"], "m5.large=0.2"),
    ],
)
def test_simulate_refuses_an_instance_type_priced_twice(
    tmp_path: Path, prices: list[str], text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [part for price in prices for part in ("--price", price)]
    err = _one_line_exit_2(_simulate(tmp_path, "--trace", "burst", *flags), capsys)
    assert f"--price {text!r}: m5.large is priced twice; give each instance type once" in err


def test_a_trace_row_that_names_a_resource_twice_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("time,bundle,count\n0,CPU=2;CPU=4,3\n")
    err = _one_line_exit_2(_simulate(tmp_path, "--trace", str(trace)), capsys)
    assert f"{trace}:2: bundle 'CPU=2;CPU=4': CPU is given twice; give each resource once" in err


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("demand.yaml", "- bundle: {CPU: 2, CPU: 4}\n  count: 3\n", "line 1, column 20"),
        ("trace.yaml", "- {time: 0, bundle: {CPU: 2, CPU: 4}, count: 3}\n", "line 1, column 30"),
    ],
)
def test_a_yaml_bundle_that_names_a_resource_twice_is_refused_naming_it(
    tmp_path: Path, name: str, text: str, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # YAML itself keeps the last of two equal keys: a bundle would lose a resource silently.
    file = tmp_path / name
    file.write_text(text)
    if name == "demand.yaml":
        args = ["request", str(_cluster(tmp_path)), "--file", str(file)]
    else:
        args = _simulate(tmp_path, "--trace", str(file))
    err = _one_line_exit_2(args, capsys)
    assert f"{file}: {where}: CPU is given twice (first at line 1); give each key once" in err


def test_a_config_that_names_a_node_type_twice_is_refused_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cluster(tmp_path)
    text = config.read_text()
    node_type = text[text.index("  cpu:") : text.index("cluster_name:")]
    config.write_text(
        text.replace(node_type, node_type + node_type.replace("m5.large", "c5.large"))
    )
    err = _one_line_exit_2(["validate", str(config)], capsys)
    assert "cpu is given twice (first at line 2); give each key once" in err


# Each command with the arguments it requires.
COMMAND_ARGS = {
    "run": ["c.yaml"],
    "status": ["c.yaml"],
    "iam-policy": ["c.yaml"],
    "request": ["c.yaml", "--clear"],
    "validate": ["c.yaml"],
    "simulate": ["--config", "c.yaml", "--trace", "burst"],
    "emulator": [],
}


def _command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, the ones added later included (argparse lists them only on
    its subparsers action)."""
    (commands,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(commands.choices)


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
@pytest.mark.parametrize(
    ("before", "after", "level"),
    [
        ([], ["--log-level", "debug"], "debug"),
        (["--log-level", "info"], [], "info"),
        (["--log-level", "error"], ["--log-level", "debug"], "debug"),
        ([], [], None),
    ],
)
def test_log_level_may_come_before_or_after_the_command_and_after_wins(
    command: str, before: list[str], after: list[str], level: str | None
) -> None:
    args = build_parser().parse_args([*before, command, *COMMAND_ARGS[command], *after])
    assert args.log_level == level


def test_every_command_offers_log_level_in_its_help() -> None:
    for name, parser in _command_parsers().items():
        assert "--log-level {debug,info,warning,error}" in parser.format_help(), name


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, as it was before the test configured it through the CLI."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


def test_log_level_after_the_command_sets_the_level(
    tmp_path: Path, root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cluster(tmp_path)
    assert main(["--log-level", "error", "validate", str(config), "--log-level", "debug"]) == 0
    assert root_logger.level == logging.DEBUG
    assert "ok: cluster fine" in capsys.readouterr().out


def test_run_replica_id_is_a_name_safe_in_a_user_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _cluster(tmp_path)
    err = _one_line_exit_2(["run", str(config), "--replica-id", "a/b"], capsys)
    assert "--replica-id: replica id 'a/b': use letters, digits" in err


def test_run_terminate_unknown_is_refused_for_replicas(
    tmp_path: Path, postgres: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A replica may not act before it leads: terminating at start is for a single daemon.
    config = tmp_path / "replica.yaml"
    data = yaml.safe_load(_cluster(tmp_path).read_text())
    data.update(provider={"type": "memory"}, ledger=postgres, ha={})
    config.write_text(yaml.safe_dump(data))
    err = _one_line_exit_2(
        ["run", str(config), "--terminate-unknown", "--metrics", "off", "--quiet"], capsys
    )
    assert "--terminate-unknown: not with replicas" in err
