"""``steadyscale simulate``: run a cluster config against a demand trace on the simulated
EC2, on a virtual clock; write report.json and report.png and print a summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from steadyscale.app.cli.common import Commands, load_config
from steadyscale.errors import SteadyscaleError

if TYPE_CHECKING:
    from steadyscale.sim import Simulation, SimulationResult


def register(commands: Commands) -> None:
    p = commands.add_parser(
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
        help="burst, diurnal (a day's curve in hourly steps, repeated each day; a day or "
        "less holds the whole curve), spiky, or a .csv/.yaml file of time, bundle, count",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for every delay and fault")
    p.add_argument(
        "--duration",
        default="1h",
        help="virtual time to run, in seconds or with a unit: 3600, 90m, 1h, 7d (at most 366d)",
    )
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
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    import json  # noqa: PLC0415
    import time  # noqa: PLC0415

    from steadyscale.app.runtime import assemble_simulation  # noqa: PLC0415
    from steadyscale.sim import (  # noqa: PLC0415
        Simulation,
        parse_duration,
        resolve_trace,
        write_report,
    )

    config = load_config(args.config)
    duration = parse_duration(args.duration)
    _check_peak(args.peak)
    prices = prices_from_flags(args.price)
    trace = resolve_trace(args.trace, config, peak=args.peak, duration=duration, seed=args.seed)
    report_dir = _report_dir(args.report_dir)
    sim = Simulation(
        config,
        trace,
        seed=args.seed,
        duration=duration,
        assemble=assemble_simulation,
        ledger_path=report_dir / "ledger.db",
        prices=prices,
        profile=args.profile,
    )
    started = time.perf_counter()
    try:
        result = _run_with_progress(sim, quiet=args.quiet or args.json)
        paths = write_report(result, report_dir)
    finally:
        sim.close()
    wall = time.perf_counter() - started
    if args.json:
        print(json.dumps(result.report.model_dump(), sort_keys=True))
        return 0
    _print_summary(result, paths, seed=args.seed, wall=wall)
    return 0


def prices_from_flags(texts: list[str]) -> dict[str, float]:
    """Dollars per instance-hour by instance type, from ``--price TYPE=DOLLARS`` flags."""
    from steadyscale.core.resources import RepeatedName, parse_amounts  # noqa: PLC0415

    def priced_twice(text: str, name: str) -> SteadyscaleError:
        return SteadyscaleError(
            f"--price {text!r}: {name} is priced twice; give each instance type once"
        )

    prices: dict[str, float] = {}
    for text in texts:
        try:
            given = parse_amounts(text)
        except RepeatedName as exc:
            raise priced_twice(text, exc.name) from None
        except ValueError as exc:
            raise SteadyscaleError(
                f"--price {text!r}: write TYPE=DOLLARS_PER_HOUR, e.g. m5.large=0.096 (not {exc})"
            ) from None
        if repeated := sorted(prices.keys() & given.keys()):
            raise priced_twice(text, repeated[0])
        prices.update(given)
    return prices


def _check_peak(peak: int | None) -> None:
    from steadyscale.core.resources import MAX_BUNDLES  # noqa: PLC0415

    if peak is not None and peak < 0:
        raise SteadyscaleError(f"--peak must be >= 0, got {peak}")
    if peak is not None and peak > MAX_BUNDLES:
        raise SteadyscaleError(
            f"--peak {peak} is more bundles than any cluster holds; give at most {MAX_BUNDLES}"
        )


def _report_dir(text: str) -> Path:
    """The report directory, created if need be."""
    report_dir = Path(text)
    if report_dir.exists() and not report_dir.is_dir():
        raise SteadyscaleError(f"--report-dir {report_dir} is a file; give a directory")
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SteadyscaleError(
            f"--report-dir {report_dir}: cannot create it "
            f"({exc.strerror}); give a directory you can write"
        ) from None
    return report_dir


def _run_with_progress(sim: Simulation, *, quiet: bool) -> SimulationResult:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    with Progress(
        TextColumn("simulating {task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} virtual s"),
        TimeElapsedColumn(),
        disable=quiet,
        transient=True,
    ) as bar:
        task = bar.add_task(sim.trace.name, total=sim.duration)
        return sim.run(progress=lambda done: bar.update(task, completed=done))


def _print_summary(
    result: SimulationResult, paths: tuple[Path, Path], *, seed: int, wall: float
) -> None:
    from steadyscale.sim import PricedCost  # noqa: PLC0415

    report = result.report
    capacity = report.time_to_capacity_seconds
    print(
        f"simulated {report.duration_seconds:.0f}s of trace {report.trace} (seed {seed}, "
        f"profile {report.model_profile}) in {wall:.1f}s wall, {result.ticks} ticks"
    )
    print(f"  time to capacity   {'not reached' if capacity is None else f'{capacity:.0f}s'}")
    print(f"  peak running       {report.peak_running} (peak demand {report.peak_demand})")
    cost = report.cost
    money = f", ${cost.total:.2f}" if isinstance(cost, PricedCost) else " (no prices given)"
    print(f"  node-hours         {report.node_hours_total:.1f}{money}")
    calls = ", ".join(f"{a} {n}" for a, n in report.api_calls_by_action.items())
    print(f"  API calls          {report.api_calls_total} ({calls}); throttled {report.throttles}")
    print(
        f"  duplicates {report.duplicates}, leaks {report.leaks}, stuck ticks "
        f"{report.stuck_ticks}, tick errors {report.tick_errors}"
    )
    if report.awaiting_adoption:
        print(
            f"  awaiting adoption  {report.awaiting_adoption} instance(s) whose launch "
            "answer was lost, of requests still open (resent or adopted next)"
        )
    print(f"  report             {paths[0]}, {paths[1]}")
