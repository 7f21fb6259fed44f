"""Bad input a new user meets, on every command: one line on stderr that says what is wrong
and how to fix it, exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from steadyscale.app.cli import main
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
