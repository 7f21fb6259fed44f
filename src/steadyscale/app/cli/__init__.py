"""The ``steadyscale`` command line.

Every user error (bad flag, bad file, port in use) ends as one line on stderr and exit
code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from steadyscale import __version__
from steadyscale.app.cli import (
    emulator,
    events,
    iam_policy,
    ledger,
    request,
    run,
    simulate,
    status,
    validate,
)
from steadyscale.app.cli.common import EXIT_USAGE, Parser, add_log_level
from steadyscale.errors import SteadyscaleError
from steadyscale.ops.logs import LogFormat, configure_logging

# In the order `steadyscale --help` lists them.
COMMANDS = (run, status, iam_policy, events, request, validate, simulate, emulator, ledger)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="steadyscale", description=__doc__)
    parser.add_argument("--version", action="version", version=f"steadyscale {__version__}")
    add_log_level(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.register(commands)
    for command_parser in commands.choices.values():
        add_log_level(command_parser, default=argparse.SUPPRESS)
    return parser


def log_defaults(
    *, command: str, log_level: str | None, log_format: LogFormat, quiet: bool, stderr_tty: bool
) -> tuple[str, bool]:
    """(level, whether node state changes are logged) when --log-level is not given.

    JSON logs are for machines: info. ``run`` logs every node's state change with its
    reason on stderr when nobody watches its progress lines (stderr is not a terminal, as
    under systemd, docker or a pipe; or --quiet). In a terminal the progress lines on
    stdout already tell the story, so the quick start is not drowned in one line per move;
    --log-level info shows them there too."""
    if log_level is not None:
        return log_level, False
    if log_format == "json":
        return "info", False
    return "warning", command == "run" and (quiet or not stderr_tty)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_format: LogFormat = "json" if getattr(args, "log_format", "") == "json" else "human"
    level, node_changes = log_defaults(
        command=args.command,
        log_level=args.log_level,
        log_format=log_format,
        quiet=bool(getattr(args, "quiet", False)),
        stderr_tty=sys.stderr.isatty(),
    )
    configure_logging(level=level, log_format=log_format, node_changes=node_changes)
    try:
        result: int = args.func(args)
        return result
    except SteadyscaleError as exc:
        print(f"steadyscale: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`steadyscale status --json | head`): not our error.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the exit flush is silent
        return 0
