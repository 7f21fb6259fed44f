"""Drain hooks, run: the command or HTTP call a node type's ``drain.hook`` names, for one
node, with its placeholders filled in, bounded by the hook's timeout. Each run ends in one
outcome (``succeeded``, ``failed``, ``timed_out``), logged and counted; the ``Drainer``
runs them in a bounded worker pool so that no tick waits on one.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from steadyscale.config.drain import Drain
from steadyscale.core.lifecycle import NodeRecord

log = logging.getLogger("steadyscale.drain")

SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
# What a failed hook's log line quotes of its output or answer, at most.
_SHOWN = 200


@dataclass(frozen=True)
class HookCall:
    """One hook run for one node, placeholders filled in (taken from the record in the
    loop's thread, so the worker never reads a record the loop may be changing)."""

    node_id: str
    node_type: str
    argv: tuple[str, ...] = ()
    url: str | None = None
    method: str = "POST"
    timeout: float = 30.0

    @property
    def target(self) -> str:
        return self.url if self.url is not None else " ".join(self.argv)


def hook_call(record: NodeRecord, drain: Drain) -> HookCall | None:
    """The call ``drain``'s hook makes for ``record``, or None without a hook."""
    hook = drain.hook
    if hook is None:
        return None
    values = _placeholders(record)
    if hook.command is not None:
        argv = tuple(argument.format_map(values) for argument in hook.command)
        return HookCall(
            record.node_id, record.node_type, argv=argv, timeout=drain.hook_timeout_seconds
        )
    if hook.http is None:  # the config allows exactly one of the two
        return None
    return HookCall(
        record.node_id,
        record.node_type,
        url=hook.http.url.format_map(values),
        method=hook.http.method,
        timeout=drain.hook_timeout_seconds,
    )


def _placeholders(record: NodeRecord) -> Mapping[str, str]:
    return {
        "instance_id": record.instance_id or "",
        "node_id": record.node_id,
        "node_type": record.node_type,
        "private_ip": record.private_ip or "",
    }


def run_hook(call: HookCall) -> str:
    """Run ``call`` to its end (at most about its timeout): its outcome, logged."""
    try:
        if call.url is not None:
            outcome, detail = _http(call)
        else:
            outcome, detail = _command(call)
    except Exception as exc:  # a hook must never take a worker down
        outcome, detail = FAILED, f"{type(exc).__name__}: {exc}"
    if outcome == SUCCEEDED:
        log.info("drain hook for %s succeeded (%s)", call.node_id, call.target)
    else:
        log.warning(
            "drain hook for %s %s (%s): %s",
            call.node_id,
            outcome.replace("_", " "),
            call.target,
            detail,
            extra={"node_id": call.node_id, "node_type": call.node_type, "outcome": outcome},
        )
    return outcome


def _command(call: HookCall) -> tuple[str, str]:
    try:
        # An argv list from the config, never through a shell.
        done = subprocess.run(
            call.argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=call.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return TIMED_OUT, f"still running after {call.timeout:g}s (killed)"
    except OSError as exc:
        return FAILED, f"cannot run it: {exc.strerror or exc}"
    if done.returncode == 0:
        return SUCCEEDED, ""
    said = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[:_SHOWN]
    return FAILED, f"exit status {done.returncode}" + (f": {said}" if said else "")


def _http(call: HookCall) -> tuple[str, str]:
    if call.url is None:
        return FAILED, "no URL"
    try:
        # Never through a proxy from the environment: the hook is meant for the node, or
        # a service beside the workload.
        answer = httpx.request(call.method, call.url, timeout=call.timeout, trust_env=False)
    except httpx.TimeoutException:
        return TIMED_OUT, f"no answer within {call.timeout:g}s"
    except httpx.HTTPError as exc:
        return FAILED, f"{type(exc).__name__}: {exc}"
    if answer.is_success:
        return SUCCEEDED, ""
    return FAILED, f"HTTP {answer.status_code}: {answer.text.strip()[:_SHOWN]}"
