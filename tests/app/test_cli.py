"""The command line: the emulator command serves boto3; bad input is one line, exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from steadyscale.app.cli import main

COMMAND = [sys.executable, "-m", "steadyscale"]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*COMMAND, "emulator", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "serving EC2 at http://127.0.0.1:" in first, proc.stderr.read() if proc.stderr else ""
    return proc, first.rsplit(" ", 1)[1].strip()


@pytest.fixture
def served() -> Iterator[str]:
    proc, url = _start("--profile", "realistic", "--seed", "3")
    yield url
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out


def test_emulator_command_serves_an_eventually_consistent_endpoint(served: str) -> None:
    ec2 = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=served,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=3)["Instances"]
    ]
    assert len(ids) == 3
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances(InstanceIds=ids)  # seed 3: not all visible at once
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*COMMAND, "emulator", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"steadyscale: error: port {port} on 127.0.0.1 is in use; pick another with --port, "
        "or --port 0 for a free one"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["emulator", "--profile", "wild"], "invalid choice: 'wild'"),
        (["emulator", "--set", "visibility.median=-1"], "visibility.median: "),
        (["emulator", "--visibility", "2,1,3"], "visibility: p99 (1.0) must be >= median (2.0)"),
        (["emulator", "--visibility", "two"], "--visibility must be three numbers"),
        (["emulator", "--time-scale", "0"], "time_scale: "),
        (["emulator", "--port", "70000"], "--port must be between 0 and 65535"),
        (["emulator", "--config", "/nonexistent/emu.yaml"], "cannot read /nonexistent/emu.yaml"),
        (["emulator", "--set", "colour=blue"], "colour: unknown key"),
        (["launch-rockets"], "invalid choice: 'launch-rockets'"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(args))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_malformed_yaml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "emu.yaml"
    bad.write_text("errors: {timeout_seconds: [\n")
    assert main(["emulator", "--config", str(bad)]) == 2
    assert "malformed YAML at line" in capsys.readouterr().err


def test_print_settings_shows_the_layered_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "emu.yaml"
    file.write_text("profile: harsh\nerrors: {timeout_seconds: 1.5}\n")
    assert (
        main(
            [
                "emulator",
                "--config",
                str(file),
                "--seed",
                "9",
                "--throttling",
                "off",
                "--print-settings",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "profile: harsh" in out and "seed: 9" in out and "timeout_seconds: 1.5" in out
    assert "enabled: false" in out


def test_the_module_runs_without_installing_the_script() -> None:
    result = subprocess.run(
        [*COMMAND, "--version"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 0 and result.stdout.startswith("steadyscale ")


@pytest.mark.parametrize("command", [[], ["simulate"], ["emulator"], ["run"]])
def test_help_loads_neither_moto_nor_matplotlib(command: list[str]) -> None:
    probe = (
        "import sys\n"
        "from steadyscale.app.cli import main\n"
        "try:\n"
        f"    main({[*command, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({'moto', 'matplotlib', 'boto3'} & set(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "[]"
    assert "usage: steadyscale" in result.stdout
