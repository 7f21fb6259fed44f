"""``steadyscale status``: the cluster as its ledger tells it (node types x counts by status,
demand, recent failures, the oldest instance EC2 does not show yet), once or ``--watch``."""

from __future__ import annotations

import argparse
import math
import sys

from steadyscale.app.cli.common import Commands, ledger_file
from steadyscale.errors import SteadyscaleError

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
    from steadyscale.ops.status import read_status, render_status  # noqa: PLC0415

    config_path, interval = status_arguments(args.config, args.watch)
    if interval is not None and args.json:
        raise SteadyscaleError("--json prints once; use it without --watch (e.g. in a loop)")
    config, path = ledger_file(config_path)
    if interval is not None:
        from rich.console import Console  # noqa: PLC0415

        from steadyscale.ops.status import watch_status  # noqa: PLC0415
        from steadyscale.retries.clock import WallClock  # noqa: PLC0415

        watch_status(
            lambda: read_status(config, path),
            interval=interval,
            clock=WallClock(),
            console=Console(),
        )
        return 0
    report = read_status(config, path)
    if args.json:
        print(report.model_dump_json())
    elif sys.stdout.isatty():
        from rich.console import Console  # noqa: PLC0415

        from steadyscale.ops.status import status_view  # noqa: PLC0415

        Console().print(status_view(report))
    else:
        print(render_status(report), end="")
    return 0
