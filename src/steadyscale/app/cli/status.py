"""``steadyscale status``: the cluster as its ledger tells it (node types x counts by status,
demand, recent failures, the oldest instance EC2 does not show yet), once or ``--watch``."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, ledger_file, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.ops.status_report import StatusReport

WATCH_SECONDS = 2.0


def register(commands: Commands) -> None:
    status = commands.add_parser(
        "status",
        help="show nodes, demand and recent failures",
        description="Show the cluster from its ledger: node types x counts by status, "
        "demand, recent failures, the oldest instance EC2 does not show yet. Safe while "
        "the daemon runs (reads without its lock).",
    )
    # CONFIG is optional to argparse only so that `--watch CONFIG` (no SECONDS) works:
    # status_arguments tells a number of seconds from the config file.
    status.add_argument("config", metavar="CONFIG", nargs="?")
    status.add_argument(
        "--json",
        action="store_true",
        help="one JSON object, for scripts (schema: docs/status.schema.json)",
    )
    status.add_argument(
        "--watch",
        nargs="?",
        const="",
        default=None,
        metavar="SECONDS",
        help="refresh every SECONDS (default 2) until Ctrl-C",
    )
    status.set_defaults(func=execute)


def status_arguments(config: str | None, watch: str | None) -> tuple[str, float | None]:
    """(CONFIG, refresh interval or None) from ``status``'s arguments, in either order:
    ``--watch`` takes an optional SECONDS, so in ``status --watch c.yaml`` the value argparse
    gave --watch is the config file."""
    interval: float | None = None
    if watch is not None:
        try:
            interval = float(watch) if watch else WATCH_SECONDS
        except ValueError:
            if config is not None:
                raise SteadyscaleError(
                    f"--watch takes a number of seconds > 0, got {watch!r}"
                ) from None
            config, interval = watch, WATCH_SECONDS
        if not (math.isfinite(interval) and interval > 0):
            raise SteadyscaleError(f"--watch takes a number of seconds > 0, got {watch}")
    if config is None:
        raise SteadyscaleError(
            "status needs CONFIG, the cluster config file, e.g. "
            "steadyscale status cluster.yaml --watch"
        )
    return config, interval


def execute(args: argparse.Namespace) -> int:
    config_path, interval = status_arguments(args.config, args.watch)
    if interval is not None and args.json:
        raise SteadyscaleError("--json prints once; use it without --watch (e.g. in a loop)")
    fetch = status_source(config_path)
    if interval is not None:
        from rich.console import Console  # noqa: PLC0415

        from steadyscale.ops.status import watch_status  # noqa: PLC0415
        from steadyscale.retries.clock import WallClock  # noqa: PLC0415

        watch_status(fetch, interval=interval, clock=WallClock(), console=Console())
        return 0
    report = fetch()
    if args.json:
        print(report.model_dump_json())
    elif sys.stdout.isatty():
        from rich.console import Console  # noqa: PLC0415

        from steadyscale.ops.status import status_view  # noqa: PLC0415

        Console().print(status_view(report))
    else:
        from steadyscale.ops.status import render_status  # noqa: PLC0415

        print(render_status(report), end="")
    return 0


def status_source(config_path: str) -> Callable[[], StatusReport]:
    """Where the status comes from: the running daemon's API when one answers (the same
    report), else the ledger, read without its lock."""
    from steadyscale.app.cli.through_api import daemon_client  # noqa: PLC0415
    from steadyscale.client import ApiError  # noqa: PLC0415
    from steadyscale.config import ledger_location  # noqa: PLC0415
    from steadyscale.ops.status import read_status  # noqa: PLC0415

    config = load_config(config_path)
    client = daemon_client(config, config_path, ledger_location(config, config_path), write=False)

    def from_ledger() -> StatusReport:
        config, path = ledger_file(config_path)
        return read_status(config, path)

    if client is None:
        return from_ledger

    def from_api() -> StatusReport:
        try:
            return client.status()
        except ApiError as exc:
            if exc.status != 0:
                raise SteadyscaleError(f"the daemon's API at {client.url}: {exc.detail}") from None
            return from_ledger()  # (the daemon stopped meanwhile)

    return from_api
