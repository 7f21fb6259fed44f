"""The ``steadyscale`` command line.

Every user error (bad flag, bad file, port in use) ends as one line on stderr and exit
code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from steadyscale import __version__
from steadyscale.errors import SteadyscaleError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _emulator_parser(sub: Any) -> None:
    p = sub.add_parser(
        "emulator",
        help="serve an eventually consistent EC2 endpoint on 127.0.0.1",
        description=(
            "Serve an EC2 API endpoint (moto's EC2 behind a consistency-and-fault layer). "
            "Point boto3, the AWS CLI or any SDK at the printed endpoint URL."
        ),
    )
    p.add_argument("--profile", choices=["none", "realistic", "harsh"], default=None,
                   help="built-in fault profile (default: the file's, else none)")
    p.add_argument("--config", metavar="FILE", help="YAML file of emulator settings")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   dest="assignments",
                   help="override any setting, e.g. --set errors.timeout_seconds=2 (repeatable)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else is exposed)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--seed", type=int, help="random seed for every delay and fault")
    p.add_argument("--time-scale", type=float, dest="time_scale",
                   help="shrink every delay alike, e.g. 0.1 runs 10x faster than real time")
    p.add_argument("--visibility", metavar="MEDIAN,P99,MAX",
                   help="visibility delay distribution in seconds, e.g. 2,30,120")
    p.add_argument("--boot", metavar="MEDIAN,P99,MAX",
                   help="pending-to-running delay distribution in seconds")
    p.add_argument("--throttling", choices=["on", "off"], help="EC2 token-bucket throttling")
    p.add_argument("--throttle-scale", type=float, dest="throttle_scale",
                   help="multiply every throttling bucket's size and refill rate")
    p.add_argument("--print-settings", action="store_true",
                   help="print the effective settings as YAML and exit")
    p.set_defaults(func=_cmd_emulator)


def _distribution(flag: str, text: str) -> dict[str, float]:
    parts = text.split(",")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise SteadyscaleError(f"{flag} must be three numbers MEDIAN,P99,MAX, got {text!r}")
    return {"median": values[0], "p99": values[1], "max": values[2]}


def _cmd_emulator(args: argparse.Namespace) -> int:
    # Imported here so `steadyscale --help` does not pay for loading moto.
    import yaml  # noqa: PLC0415

    from steadyscale.emulator import Emulator, build_settings  # noqa: PLC0415

    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.time_scale is not None:
        overrides["time_scale"] = args.time_scale
    if args.visibility:
        overrides["visibility"] = _distribution("--visibility", args.visibility)
    if args.boot:
        overrides["boot"] = _distribution("--boot", args.boot)
    throttling: dict[str, Any] = {}
    if args.throttling:
        throttling["enabled"] = args.throttling == "on"
    if args.throttle_scale is not None:
        throttling["scale"] = args.throttle_scale
    if throttling:
        overrides["throttling"] = throttling
    settings = build_settings(
        profile=args.profile, file=args.config, overrides=overrides,
        assignments=args.assignments,
    )
    if args.print_settings:
        print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    if not 0 <= args.port <= 65535:
        raise SteadyscaleError(f"--port must be between 0 and 65535, got {args.port}")
    emulator = Emulator(settings, host=args.host, port=args.port).start()
    url = emulator.endpoint_url
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}, reachable beyond this machine",
              file=sys.stderr)
    print(f"steadyscale emulator serving EC2 at {url}", flush=True)
    print(f"  profile {settings.profile}, seed {settings.seed}, time scale {settings.time_scale}",
          flush=True)
    print(f"  use it:      aws ec2 describe-instances --endpoint-url {url}", flush=True)
    print(f"  ground truth: {url}/_steadyscale/truth   call log: {url}/_steadyscale/calls",
          flush=True)

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print("steadyscale emulator stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="steadyscale", description=__doc__)
    parser.add_argument("--version", action="version", version=f"steadyscale {__version__}")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _emulator_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.func(args)
        return result
    except SteadyscaleError as exc:
        print(f"steadyscale: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
