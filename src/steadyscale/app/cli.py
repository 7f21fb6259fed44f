"""The ``steadyscale`` command line.

Every user error (bad flag, bad file, port in use) ends as one line on stderr and exit
code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from steadyscale import __version__
from steadyscale.errors import SteadyscaleError
from steadyscale.ops.logs import LogFormat, configure_logging

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
    p.set_defaults(func=_cmd_emulator)


def _loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, as far as we know


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
        profile=args.profile,
        file=args.config,
        overrides=overrides,
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
    url = emulator.endpoint_url
    if not _loopback(args.host):
        print(f"warning: listening on {args.host}, reachable beyond this machine", file=sys.stderr)
    print(f"steadyscale emulator serving EC2 at {url}", flush=True)
    print(
        f"  profile {settings.profile}, seed {settings.seed}, time scale {settings.time_scale}",
        flush=True,
    )
    print(f"  use it:      aws ec2 describe-instances --endpoint-url {url}", flush=True)
    print(
        f"  ground truth: {url}/_steadyscale/truth   call log: {url}/_steadyscale/calls", flush=True
    )

    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        print("steadyscale emulator stopped", flush=True)
    return 0


def _cluster_parsers(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run the autoscaler daemon for a cluster config",
        description="Run the autoscaler: observe EC2, decide, act, every "
        "loop_interval_seconds. Ctrl-C or SIGTERM stops it cleanly.",
    )
    run.add_argument("config", metavar="CONFIG", help="cluster config (YAML)")
    run.add_argument(
        "--max-seconds", type=float, dest="max_seconds", help="stop after this many (clock) seconds"
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    run.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    run.add_argument(
        "--log-format",
        choices=["human", "json"],
        default="human",
        help="log lines on stderr: human (default) or one JSON object per line "
        "(then --log-level defaults to info). Every node's state change is "
        "logged with its reason, unless stderr is a terminal that also shows "
        "the progress lines (then: --log-level info)",
    )
    run.add_argument(
        "--metrics",
        metavar="[HOST:]PORT|off",
        help="serve /metrics and /healthz here (default: the config's metrics "
        "block, 127.0.0.1 and a free port); 'off' serves nothing",
    )
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser(
        "status",
        help="show nodes, demand and recent failures",
        description="Show the cluster from its ledger: node types x counts by status, "
        "demand, recent failures, the oldest instance EC2 does not show yet. Safe while "
        "the daemon runs (reads without its lock).",
    )
    # CONFIG is optional to argparse only so that `--watch CONFIG` (no SECONDS) works:
    # _status_arguments tells a number of seconds from the config file.
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
    status.set_defaults(func=_cmd_status)

    iam = sub.add_parser(
        "iam-policy",
        help="print the least-privilege IAM policy the config needs",
        description="Print the IAM policy (JSON) the daemon needs for this config: every "
        "EC2 action it calls, scoped by the cluster tag where EC2 allows.",
    )
    iam.add_argument("config", metavar="CONFIG")
    iam.set_defaults(func=_cmd_iam_policy)

    request = sub.add_parser(
        "request",
        help="set the demand: resource bundles and counts",
        description="Replace the cluster's demand. Example: steadyscale request c.yaml "
        "--bundle CPU=2 --count 10 --bundle CPU=4,GPU=1 --count 2",
    )
    request.add_argument("config", metavar="CONFIG")
    request.add_argument(
        "--bundle",
        action="append",
        default=[],
        help="resources of one bundle, e.g. CPU=4,GPU=1 (repeatable)",
    )
    request.add_argument(
        "--count",
        action="append",
        type=int,
        default=[],
        help="how many of the preceding --bundle (repeatable)",
    )
    request.add_argument("--file", help="YAML list of {bundle: {...}, count: N}")
    request.add_argument("--clear", action="store_true", help="demand nothing")
    request.set_defaults(func=_cmd_request)

    validate = sub.add_parser("validate", help="check a cluster config and say what is wrong")
    validate.add_argument("config", metavar="CONFIG")
    validate.set_defaults(func=_cmd_validate)


def _load(path: str) -> Any:
    from steadyscale.app.loading import load_cluster_config  # noqa: PLC0415

    return load_cluster_config(path)


def _cmd_validate(args: argparse.Namespace) -> int:
    import botocore.session  # noqa: PLC0415

    config = _load(args.config)
    if (
        config.provider.type == "aws"
        and config.provider.endpoint_url is None
        and (botocore.session.get_session().get_credentials() is None)
    ):
        raise SteadyscaleError(
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run on a machine with an instance role"
        )
    types = ", ".join(
        f"{name} ({t.instance_type}, {t.min_workers}-{t.max_workers})"
        for name, t in config.available_node_types.items()
    )
    print(
        f"ok: cluster {config.cluster_name}, provider {config.provider.type} "
        f"({config.provider.region}), node types: {types}"
    )
    return 0


def _metrics_address(text: str | None, host: str, port: int | str) -> tuple[str, int] | None:
    """Where to serve metrics: ``--metrics`` if given, else the config's; None for off."""
    if text is not None:
        if text.strip().lower() == "off":
            return None
        where, sep, number = text.rpartition(":")
        if not number.isdigit() or not 0 <= int(number) <= 65535 or (sep and not where):
            raise SteadyscaleError(
                f"--metrics {text!r}: give PORT, HOST:PORT (0 picks a "
                "free port) or off, e.g. --metrics 127.0.0.1:9464"
            )
        return (where.strip("[]") if sep else host), int(number)
    return None if port == "off" else (host, int(port))


def _cmd_run(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from steadyscale.app.daemon import format_summary, run_daemon  # noqa: PLC0415
    from steadyscale.app.runtime import open_runtime  # noqa: PLC0415
    from steadyscale.ops.metrics import MetricsServer  # noqa: PLC0415

    config = _load(args.config)
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise SteadyscaleError("--max-seconds must be > 0")
    address = _metrics_address(args.metrics, config.metrics.host, config.metrics.port)
    # Ctrl-C and SIGTERM ask the loop to stop after its tick, from the very start.
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runtime = open_runtime(config, args.config)
    server: MetricsServer | None = None
    try:
        if not args.quiet:
            where = (
                f"embedded emulator at {runtime.emulator.endpoint_url}, profile "
                f"{runtime.emulator.settings.profile}, time scale "
                f"{runtime.emulator.settings.time_scale}"
                if runtime.emulator
                else f"EC2 {config.provider.region}"
            )
            print(
                f"steadyscale: cluster {config.cluster_name} on {where}; "
                f"ledger {runtime.ledger_path}",
                flush=True,
            )
        if address is not None and runtime.metrics is not None:
            server = MetricsServer(runtime.metrics, host=address[0], port=address[1]).start()
            if not _loopback(address[0]):
                print(
                    f"warning: metrics listen on {address[0]}, reachable beyond this machine",
                    file=sys.stderr,
                )
            if not args.quiet:
                print(
                    f"steadyscale: metrics at {server.url}/metrics, health at {server.url}/healthz",
                    flush=True,
                )
        summary = run_daemon(runtime, max_seconds=args.max_seconds, quiet=args.quiet, stop=stop)
        scale = runtime.emulator.settings.time_scale if runtime.emulator else 1.0
        if args.json:
            print(json.dumps(summary.as_dict()))
        else:
            print(format_summary(summary, time_scale=scale), end="")
    finally:
        if server is not None:
            server.stop()
        runtime.close()
    return 0


def _open_ledger(config_path: str) -> tuple[Any, Any]:
    from steadyscale.store.ledger import Ledger  # noqa: PLC0415

    config, path = _ledger_file(config_path)
    return config, Ledger(path)


def _ledger_file(config_path: str) -> tuple[Any, Any]:
    from steadyscale.config import ledger_path  # noqa: PLC0415

    config = _load(config_path)
    path = ledger_path(config, config_path)
    if not path.exists():
        raise SteadyscaleError(
            f"no ledger at {path} yet; start the cluster with: steadyscale run {config_path}"
        )
    return config, path


WATCH_SECONDS = 2.0


def _status_arguments(config: str | None, watch: str | None) -> tuple[str, float | None]:
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


def _cmd_status(args: argparse.Namespace) -> int:
    from steadyscale.ops.status import read_status, render_status  # noqa: PLC0415

    config_path, interval = _status_arguments(args.config, args.watch)
    if interval is not None and args.json:
        raise SteadyscaleError("--json prints once; use it without --watch (e.g. in a loop)")
    config, path = _ledger_file(config_path)
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


def _cmd_iam_policy(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from steadyscale.ops.iam import build_policy  # noqa: PLC0415

    print(json.dumps(build_policy(_load(args.config)), indent=2))
    return 0


def _parse_bundle(text: str) -> dict[str, float]:
    from steadyscale.core.resources import parse_amounts  # noqa: PLC0415

    try:
        return parse_amounts(text)
    except ValueError as exc:
        raise SteadyscaleError(
            f"bundle {text!r}: write resources as NAME=AMOUNT pairs, e.g. CPU=4,GPU=1 (not {exc})"
        ) from None


def _cmd_request(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from steadyscale.core.resources import DemandItem, fits, format_bundle  # noqa: PLC0415

    items: list[DemandItem] = []
    if args.file:
        import yaml  # noqa: PLC0415

        try:
            with open(args.file, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        except OSError as exc:
            raise SteadyscaleError(f"cannot read {args.file}: {exc.strerror}") from None
        except yaml.YAMLError:
            raise SteadyscaleError(f"{args.file}: malformed YAML") from None
        if isinstance(raw, dict) and "demand" in raw:
            raw = raw["demand"]
        if not isinstance(raw, list):
            raise SteadyscaleError(f"{args.file}: expected a list of {{bundle: ..., count: N}}")
        for index, entry in enumerate(raw):
            try:
                items.append(DemandItem.model_validate(entry))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise SteadyscaleError(f"{args.file}: [{index}].{where}: {first['msg']}") from None
    if args.bundle or args.count:
        if len(args.bundle) != len(args.count):
            raise SteadyscaleError("give one --count after each --bundle")
        for text, count in zip(args.bundle, args.count, strict=True):
            if count < 0:
                raise SteadyscaleError(f"--count must be >= 0, got {count}")
            try:
                items.append(DemandItem(bundle=_parse_bundle(text), count=count))
            except ValidationError as exc:
                message = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise SteadyscaleError(f"bundle {text!r}: {message}") from None
    if not items and not args.clear:
        raise SteadyscaleError("say what to demand: --bundle ... --count N, --file, or --clear")
    config, ledger = _open_ledger(args.config)
    try:
        for item in items:
            if not any(
                fits(item.bundle, t.resources) for t in config.available_node_types.values()
            ):
                raise SteadyscaleError(
                    f"no node type can fit bundle {format_bundle(item.bundle)}; node types "
                    "offer "
                    + "; ".join(
                        f"{n} {format_bundle(t.resources)}"
                        for n, t in config.available_node_types.items()
                    )
                )
        ledger.set_demand(items, time.time())
    finally:
        ledger.close()
    total = sum(i.count for i in items)
    print(f"demand set: {total} bundle(s)" if total else "demand cleared")
    return 0


def _simulate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "simulate",
        help="run a config against a demand trace on a simulated EC2",
        description="Run the real autoscaler (scheduler, reconciler, ledger) against an "
        "in-memory EC2 with the emulator's lag and faults, on a virtual clock: an hour takes "
        "seconds. Writes report.json and report.png.",
    )
    p.add_argument("--config", required=True, metavar="CONFIG", help="cluster config (YAML)")
    p.add_argument(
        "--trace",
        required=True,
        metavar="TRACE",
        help="burst, diurnal, spiky, or a .csv/.yaml file of time, bundle, count",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for every delay and fault")
    p.add_argument("--duration", default="1h", help="virtual time to run, e.g. 3600, 90m, 1h")
    p.add_argument(
        "--peak", type=int, help="bundles at the peak of a built-in trace (default: max_workers)"
    )
    p.add_argument(
        "--profile",
        choices=["none", "realistic", "harsh"],
        help="EC2 model profile (default: provider.emulator.profile, else none)",
    )
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="TYPE=DOLLARS",
        help="price per instance-hour, e.g. m5.large=0.096 (repeatable)",
    )
    p.add_argument(
        "--report-dir",
        dest="report_dir",
        default="steadyscale-report",
        help="where report.json, report.png and the ledger go (default: ./steadyscale-report)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_simulate)


def _prices(texts: list[str]) -> dict[str, float]:
    from steadyscale.core.resources import parse_amounts  # noqa: PLC0415

    prices: dict[str, float] = {}
    for text in texts:
        try:
            prices.update(parse_amounts(text))
        except ValueError as exc:
            raise SteadyscaleError(
                f"--price {text!r}: write TYPE=DOLLARS_PER_HOUR, e.g. m5.large=0.096 (not {exc})"
            ) from None
    return prices


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from steadyscale.core.resources import MAX_BUNDLES  # noqa: PLC0415
    from steadyscale.sim import (  # noqa: PLC0415
        Simulation,
        parse_duration,
        resolve_trace,
        write_report,
    )

    config = _load(args.config)
    duration = parse_duration(args.duration)
    if args.peak is not None and args.peak < 0:
        raise SteadyscaleError(f"--peak must be >= 0, got {args.peak}")
    if args.peak is not None and args.peak > MAX_BUNDLES:
        raise SteadyscaleError(
            f"--peak {args.peak} is more bundles than any cluster holds; give at most {MAX_BUNDLES}"
        )
    prices = _prices(args.price)
    trace = resolve_trace(args.trace, config, peak=args.peak, duration=duration, seed=args.seed)
    report_dir = Path(args.report_dir)
    if report_dir.exists() and not report_dir.is_dir():
        raise SteadyscaleError(f"--report-dir {report_dir} is a file; give a directory")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SteadyscaleError(
            f"--report-dir {report_dir}: cannot create it "
            f"({exc.strerror}); give a directory you can write"
        ) from None
    sim = Simulation(
        config,
        trace,
        seed=args.seed,
        duration=duration,
        ledger_path=report_dir / "ledger.db",
        prices=prices,
        profile=args.profile,
    )
    started = time.perf_counter()
    try:
        with Progress(
            TextColumn("simulating {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} virtual s"),
            TimeElapsedColumn(),
            disable=args.quiet or args.json,
            transient=True,
        ) as bar:
            task = bar.add_task(trace.name, total=duration)
            result = sim.run(progress=lambda done: bar.update(task, completed=done))
        json_path, png_path = write_report(result, report_dir)
    finally:
        sim.close()
    wall = time.perf_counter() - started
    report = result.report
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    capacity = report["time_to_capacity_seconds"]
    print(
        f"simulated {duration:.0f}s of trace {trace.name} (seed {args.seed}, profile "
        f"{report['model_profile']}) in {wall:.1f}s wall, {result.ticks} ticks"
    )
    print(f"  time to capacity   {'not reached' if capacity is None else f'{capacity:.0f}s'}")
    print(f"  peak running       {report['peak_running']} (peak demand {report['peak_demand']})")
    cost = report["cost"]
    money = f", ${cost['total']:.2f}" if "total" in cost else " (no prices given)"
    print(f"  node-hours         {report['node_hours_total']:.1f}{money}")
    calls = ", ".join(f"{a} {n}" for a, n in report["api_calls_by_action"].items())
    print(
        f"  API calls          {report['api_calls_total']} ({calls}); throttled "
        f"{report['throttles']}"
    )
    print(
        f"  duplicates {report['duplicates']}, leaks {report['leaks']}, stuck ticks "
        f"{report['stuck_ticks']}, tick errors {report['tick_errors']}"
    )
    if report["awaiting_adoption"]:
        print(
            f"  awaiting adoption  {report['awaiting_adoption']} instance(s) whose launch "
            "answer was lost, of requests still open (resent or adopted next)"
        )
    print(f"  report             {json_path}, {png_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="steadyscale", description=__doc__)
    parser.add_argument("--version", action="version", version=f"steadyscale {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="default: warning, or info with --log-format json; run also "
        "logs every node's state change when stderr is not a terminal or "
        "with --quiet",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    _cluster_parsers(sub)
    _simulate_parser(sub)
    _emulator_parser(sub)
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
