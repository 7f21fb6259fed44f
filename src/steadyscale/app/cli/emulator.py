"""``steadyscale emulator``: serve an eventually consistent EC2 endpoint (moto's EC2 behind
the consistency-and-fault layer) on 127.0.0.1 until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any

from steadyscale.app.cli.common import Commands, is_loopback
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.ec2model.settings import EmulatorSettings


def register(commands: Commands) -> None:
    p = commands.add_parser(
        "emulator",
        help="serve an eventually consistent EC2 endpoint on 127.0.0.1",
        description=(
            "Serve an EC2 API endpoint (moto's EC2 behind a consistency-and-fault layer). "
            "Point boto3, the AWS CLI or any SDK at the printed endpoint URL."
        ),
    )
    p.add_argument(
        "--profile",
        choices=["none", "realistic", "harsh"],
        default=None,
        help="built-in fault profile (default: the file's, else none)",
    )
    p.add_argument("--config", metavar="FILE", help="YAML file of emulator settings")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="assignments",
        help="override any setting, e.g. --set errors.timeout_seconds=2 (repeatable)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; anything else is exposed)",
    )
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    p.add_argument("--seed", type=int, help="random seed for every delay and fault")
    p.add_argument(
        "--time-scale",
        type=float,
        dest="time_scale",
        help="shrink every delay alike, e.g. 0.1 runs 10x faster than real time",
    )
    p.add_argument(
        "--visibility",
        metavar="MEDIAN,P99,MAX",
        help="visibility delay distribution in seconds, e.g. 2,30,120",
    )
    p.add_argument(
        "--boot", metavar="MEDIAN,P99,MAX", help="pending-to-running delay distribution in seconds"
    )
    p.add_argument("--throttling", choices=["on", "off"], help="EC2 token-bucket throttling")
    p.add_argument(
        "--throttle-scale",
        type=float,
        dest="throttle_scale",
        help="multiply every throttling bucket's size and refill rate",
    )
    p.add_argument(
        "--print-settings",
        action="store_true",
        help="print the effective settings as YAML and exit",
    )
    p.set_defaults(func=execute)


def distribution(flag: str, text: str) -> dict[str, float]:
    """``MEDIAN,P99,MAX`` as a delay distribution's settings."""
    parts = text.split(",")
    try:
        values = [float(x) for x in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise SteadyscaleError(f"{flag} must be three numbers MEDIAN,P99,MAX, got {text!r}")
    return {"median": values[0], "p99": values[1], "max": values[2]}


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags name, laid over the profile and the file."""
    overrides: dict[str, Any] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.time_scale is not None:
        overrides["time_scale"] = args.time_scale
    if args.visibility:
        overrides["visibility"] = distribution("--visibility", args.visibility)
    if args.boot:
        overrides["boot"] = distribution("--boot", args.boot)
    throttling: dict[str, Any] = {}
    if args.throttling:
        throttling["enabled"] = args.throttling == "on"
    if args.throttle_scale is not None:
        throttling["scale"] = args.throttle_scale
    if throttling:
        overrides["throttling"] = throttling
    return overrides


def execute(args: argparse.Namespace) -> int:
    # Imported here so `steadyscale --help` does not pay for loading moto.
    import yaml  # noqa: PLC0415

    from steadyscale.emulator import Emulator, build_settings  # noqa: PLC0415

    settings = build_settings(
        profile=args.profile,
        file=args.config,
        overrides=flag_overrides(args),
        assignments=args.assignments,
    )
    if args.print_settings:
        print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), end="")
        return 0
    if not 0 <= args.port <= 65535:
        raise SteadyscaleError(f"--port must be between 0 and 65535, got {args.port}")

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # before the URL is printed: callers act on it
    emulator = Emulator(settings, host=args.host, port=args.port).start()
    _print_banner(settings, emulator.endpoint_url, host=args.host)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print("steadyscale emulator stopped", flush=True)
    return 0


def _print_banner(settings: EmulatorSettings, url: str, *, host: str) -> None:
    if not is_loopback(host):
        print(f"warning: listening on {host}, reachable beyond this machine", file=sys.stderr)
    print(f"steadyscale emulator serving EC2 at {url}", flush=True)
    print(
        f"  profile {settings.profile}, seed {settings.seed}, time scale {settings.time_scale}",
        flush=True,
    )
    print(f"  use it:      aws ec2 describe-instances --endpoint-url {url}", flush=True)
    print(
        f"  ground truth: {url}/_steadyscale/truth   call log: {url}/_steadyscale/calls", flush=True
    )
    print(
        f"  SQS and EventBridge on the same endpoint; EC2's events: {url}/_steadyscale/events",
        flush=True,
    )
