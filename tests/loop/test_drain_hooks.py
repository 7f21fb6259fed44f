"""Drain hooks run for real: a command (argv, no shell) or an HTTP call, placeholders
filled in from the node, each ending in one outcome within its timeout."""

from __future__ import annotations

import sys
from pathlib import Path

from steadyscale.config.drain import Drain
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.loop.drain_hooks import FAILED, SUCCEEDED, TIMED_OUT, hook_call, run_hook

NODE = NodeRecord(
    node_id="n-1",
    node_type="cpu",
    status=Status.DRAINING,
    created_at=0.0,
    instance_id="i-1",
    private_ip="10.0.0.1",
)


def _command(*argv: str, timeout: float = 10.0) -> str:
    drain = Drain.model_validate(
        {"hook": {"command": [sys.executable, "-c", *argv]}, "hook_timeout_seconds": timeout}
    )
    call = hook_call(NODE, drain)
    assert call is not None
    return run_hook(call)


def test_a_command_gets_its_placeholders_and_succeeds_on_exit_zero(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = f"import sys; open({str(out)!r}, 'w').write(' '.join(sys.argv[1:]))"
    assert (
        _command(script, "{node_id}", "{instance_id}", "{node_type}", "{private_ip}") == SUCCEEDED
    )
    assert out.read_text() == "n-1 i-1 cpu 10.0.0.1"


def test_a_command_failing_or_overstaying_is_said_so() -> None:
    assert _command("raise SystemExit(3)") == FAILED
    assert _command("import time; time.sleep(30)", timeout=0.3) == TIMED_OUT


def test_a_command_that_cannot_run_fails() -> None:
    drain = Drain.model_validate({"hook": {"command": ["/nonexistent/drain-it"]}})
    call = hook_call(NODE, drain)
    assert call is not None and run_hook(call) == FAILED


def test_an_http_hook_fails_on_an_error_answer_or_no_server() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    drain = Drain.model_validate({"hook": {"http": {"url": "http://127.0.0.1:9/{node_id}"}}})
    call = hook_call(NODE, drain)
    assert call is not None and call.url == "http://127.0.0.1:9/n-1"
    assert run_hook(call) == FAILED


def test_no_hook_no_call() -> None:
    assert hook_call(NODE, Drain()) is None
