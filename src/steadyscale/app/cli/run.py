"""``steadyscale run``: the autoscaler daemon for a cluster config and its metrics endpoint,
until the scenario ends, ``--max-seconds`` pass, or Ctrl-C or SIGTERM stops it."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from steadyscale.app.cli.common import Commands, is_loopback, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.app.api_service import ApiService
    from steadyscale.app.runtime import Runtime
    from steadyscale.config import ApiConfig, ClusterConfig
    from steadyscale.ops.metrics import Metrics, MetricsServer


def register(commands: Commands) -> None:
    run = commands.add_parser(
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
    api = run.add_mutually_exclusive_group()
    api.add_argument(
        "--api",
        nargs="?",
        const="",
        metavar="HOST:PORT",
        help="serve the HTTP API and web page (default: the config's api block, else "
        "nothing; --api alone listens on 127.0.0.1:8470; see docs/api.md)",
    )
    api.add_argument("--no-api", action="store_true", dest="no_api", help="serve no API")
    run.add_argument(
        "--terminate-unknown",
        action="store_true",
        dest="terminate_unknown",
        help="terminate, before the first tick, the live instances tagged with the cluster "
        "that the ledger cannot explain (without it, a new ledger facing such instances "
        "refuses to start; `steadyscale ledger adopt CONFIG` takes them over instead)",
    )
    run.add_argument(
        "--replica-id",
        metavar="NAME",
        dest="replica_id",
        help="this replica's name on a PostgreSQL ledger shared by several daemons (in the "
        "lease, the logs and the User-Agent of its EC2 calls); overrides ha.replica_id, "
        "default <hostname>-<pid>",
    )
    run.set_defaults(func=execute)


def metrics_address(text: str | None, host: str, port: int | str) -> tuple[str, int] | None:
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


def check_max_seconds(seconds: float | None) -> None:
    """``--max-seconds`` is a finite number > 0: nan compares false to everything, so a
    daemon told to stop after nan seconds would never stop."""
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise SteadyscaleError(
            f"--max-seconds must be a finite number of seconds > 0, got {seconds:g}; "
            "leave it out to run until stopped"
        )


def execute(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415

    from steadyscale.app.daemon import format_summary, run_daemon  # noqa: PLC0415
    from steadyscale.app.runtime import open_runtime  # noqa: PLC0415

    check_max_seconds(args.max_seconds)
    replica_id = _replica_id(args.replica_id)
    config = load_config(args.config)
    address = metrics_address(args.metrics, config.metrics.host, config.metrics.port)
    api = api_settings(config, args.api, no_api=args.no_api)
    if api is not None:  # (its tokens read, and an open listener refused, before anything starts)
        from steadyscale.app.api_service import check_api  # noqa: PLC0415

        check_api(api, args.config)
    stop = _stop_on_signals()
    runtime = open_runtime(config, args.config, replica_id=replica_id, daemon=True)
    server: MetricsServer | None = None
    service: ApiService | None = None
    try:
        _face_unknown(runtime, args.config, terminate=args.terminate_unknown)
        if not args.quiet:
            _print_start(config, runtime)
        if address is not None and runtime.metrics is not None:
            server = _serve_metrics(runtime.metrics, address, quiet=args.quiet)
        if api is not None:
            service = _serve_api(runtime, api, args.config, quiet=args.quiet)
        summary = run_daemon(
            runtime,
            max_seconds=args.max_seconds,
            quiet=args.quiet,
            stop=stop,
            on_event=service.on_event if service else None,
            on_tick=service.on_tick if service else None,
        )
        scale = runtime.emulator.settings.time_scale if runtime.emulator else 1.0
        if args.json:
            print(json.dumps(summary.as_dict()))
        else:
            print(format_summary(summary, time_scale=scale), end="")
    finally:
        if service is not None:
            service.stop()
        if server is not None:
            server.stop()
        runtime.close()
    return 0


def _replica_id(text: str | None) -> str | None:
    if text is None:
        return None
    from steadyscale.config import check_replica_id  # noqa: PLC0415

    try:
        return check_replica_id(text)
    except ValueError as exc:
        raise SteadyscaleError(f"--replica-id: {exc}") from None


def _face_unknown(runtime: Runtime, config_path: str, *, terminate: bool) -> None:
    """I7 at the start: a new ledger facing live cluster instances it cannot explain (a
    lost ledger's, say) refuses to act on them, unless told to terminate them."""
    from steadyscale.loop import takeover  # noqa: PLC0415

    if terminate and runtime.replication is not None:
        # A replica may not act before it leads: it terminates as a command would, under
        # the ledger's writer lock, refused while any replica leads (none takes over
        # meanwhile), before its own lease keeper starts.
        from steadyscale.store.ledger import Ledger  # noqa: PLC0415

        locked = Ledger(runtime.ledger.location)
        try:
            locked.acquire_writer()
            found = takeover.live_unknown(runtime.provider, locked)
            if found:
                takeover.terminate_unknown(runtime.provider, found)
        finally:
            locked.close()
        return
    ledger = runtime.ledger
    if terminate:
        found = takeover.live_unknown(runtime.provider, ledger)
    else:
        found = takeover.unknown_at_start(runtime.provider, ledger)
        if found:
            raise SteadyscaleError(
                f"the ledger {runtime.ledger_path} is new, but EC2 shows {len(found)} live "
                f"instance(s) tagged steadyscale:cluster={runtime.config.cluster_name} that it "
                f"cannot explain; nothing was done. Take them over: steadyscale ledger adopt "
                f"{config_path}, or terminate them: steadyscale run {config_path} "
                "--terminate-unknown"
            )
    if found:
        takeover.terminate_unknown(runtime.provider, found)  # logged: what, how many


def _stop_on_signals() -> threading.Event:
    """An event Ctrl-C and SIGTERM set, asking the loop to stop after its tick; installed
    before anything starts, so that no signal is lost in between."""
    stop = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def _print_start(config: ClusterConfig, runtime: Runtime) -> None:
    where = (
        f"embedded emulator at {runtime.emulator.endpoint_url}, profile "
        f"{runtime.emulator.settings.profile}, time scale "
        f"{runtime.emulator.settings.time_scale}"
        if runtime.emulator
        else f"EC2 {config.provider.region}"
    )
    print(
        f"steadyscale: cluster {config.cluster_name} on {where}; ledger {runtime.ledger_path}",
        flush=True,
    )


def _serve_metrics(metrics: Metrics, address: tuple[str, int], *, quiet: bool) -> MetricsServer:
    from steadyscale.ops.metrics import MetricsServer  # noqa: PLC0415

    server = MetricsServer(metrics, host=address[0], port=address[1]).start()
    if not is_loopback(address[0]):
        print(
            f"warning: metrics listen on {address[0]}, reachable beyond this machine",
            file=sys.stderr,
        )
    if not quiet:
        print(
            f"steadyscale: metrics at {server.url}/metrics, health at {server.url}/healthz",
            flush=True,
        )
    return server


def api_settings(config: ClusterConfig, flag: str | None, *, no_api: bool) -> ApiConfig | None:
    """The API to serve: the config's ``api`` block, ``--api`` (alone: the block's or the
    default address), or none (no block and no flag, or ``--no-api``)."""
    from pydantic import ValidationError  # noqa: PLC0415

    from steadyscale.config import ApiConfig  # noqa: PLC0415

    if no_api or (flag is None and config.api is None):
        return None
    api = config.api or ApiConfig()
    if flag:
        try:
            return api.model_copy(update={"listen": ApiConfig(listen=flag).listen})
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise SteadyscaleError(f"--api {flag!r}: {message}") from None
    return api


def _serve_api(runtime: Runtime, api: ApiConfig, config_path: str, *, quiet: bool) -> ApiService:
    from steadyscale.app.api_service import start_api  # noqa: PLC0415

    service = start_api(runtime, api, config_path)
    if not is_loopback(api.host):
        print(
            f"warning: the API listens on {api.host}, reachable beyond this machine",
            file=sys.stderr,
        )
    if not quiet:
        print(f"steadyscale: API and web page at {service.url}/", flush=True)
    return service
