"""Demand traces for the simulator: steps of (time, demand) from a built-in shape (burst,
diurnal, spiky) or a CSV/YAML file, checked against the config's node types; and the
``--duration`` syntax."""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from steadyscale.config import ClusterConfig, parse_yaml
from steadyscale.core.resources import (
    DemandItem,
    RepeatedName,
    fits,
    format_bundle,
    parse_amounts,
)
from steadyscale.errors import ConfigError

BUILTIN_TRACES = ("burst", "diurnal", "spiky")

# One row of a trace file: (time, bundle, count, where it was written for errors).
_Row = tuple[float, dict[str, float], int, str]


@dataclass(frozen=True)
class TraceStep:
    """From ``at`` seconds after the start, the demand is ``demand`` (until the next step)."""

    at: float
    demand: tuple[DemandItem, ...]

    @property
    def bundles(self) -> int:
        return sum(item.count for item in self.demand)


@dataclass(frozen=True)
class Trace:
    name: str
    steps: tuple[TraceStep, ...]


DAY = 86_400.0
# The longest run: a (leap) year of virtual time, over an hour of wall time for the example
# config; more is a typo, and a diurnal trace holds a step per hour of it.
MAX_DURATION = 366 * DAY
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


def parse_duration(text: str) -> float:
    """Seconds from ``3600``, ``3600s``, ``90m``, ``1.5h`` or ``7d``, at most 366 days."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    seconds = float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise ConfigError(f"--duration {text!r}: give a positive time such as 3600, 90m, 1h or 7d")
    if seconds > MAX_DURATION:
        raise ConfigError(f"--duration {text!r}: give at most 366d of virtual time")
    return seconds


def _step(at: float, bundle: Mapping[str, float], count: int) -> TraceStep:
    items = (DemandItem(bundle=dict(bundle), count=count),) if count > 0 else ()
    return TraceStep(at=at, demand=items)


def builtin_trace(
    name: str, *, peak: int, duration: float, bundle: Mapping[str, float], seed: int
) -> Trace:
    """``burst``: 0 -> peak at once, back to 0 at half time. ``diurnal``: a day's curve
    (night low, midday peak) in hourly steps, repeated each day; a day or less holds the
    whole curve, squeezed. ``spiky``: a tenth of the peak with seeded spikes to the peak
    lasting a few minutes."""
    if name == "burst":
        steps = [_step(0.0, bundle, peak), _step(duration / 2, bundle, 0)]
    elif name == "diurnal":
        steps = _diurnal(peak=peak, duration=duration, bundle=bundle)
    elif name == "spiky":
        rng = random.Random(f"{seed}/spiky")
        base = max(1, peak // 10)
        steps = [_step(0.0, bundle, base)]
        at = rng.uniform(60, 600)
        while at < duration:
            length = rng.uniform(120, 300)
            steps.append(_step(at, bundle, peak))
            steps.append(_step(at + length, bundle, base))
            at += length + rng.uniform(300, 900)
    else:
        raise ConfigError(
            f"unknown trace {name!r}; use {', '.join(BUILTIN_TRACES)} or a "
            "CSV/YAML file of time, bundle, count"
        )
    return Trace(name=name, steps=tuple(steps))


def _diurnal(*, peak: int, duration: float, bundle: Mapping[str, float]) -> list[TraceStep]:
    """The daily curve, one step per hour of the day. Up to a day the 24 steps share the
    duration, as they always have (a report is reproducible by seed); over more than a day
    the steps are real hours and every day repeats the same curve."""
    if duration <= DAY:
        starts = [duration * hour / 24 for hour in range(24)]
    else:
        starts = [3600.0 * hour for hour in range(math.ceil(duration / 3600))]
    steps = []
    for hour, at in enumerate(starts):
        level = 0.5 - 0.5 * math.cos(2 * math.pi * (hour % 24) / 24)
        steps.append(_step(at, bundle, round(peak * level)))
    return steps


def load_trace(path: str | Path) -> Trace:
    """A trace file: rows of (time in seconds, bundle, count). Rows at the same time add up;
    each time replaces the whole demand. CSV: ``time,bundle,count`` with bundles written
    ``CPU=4;GPU=1``. YAML: a list of ``{time: 0, bundle: {CPU: 4}, count: 10}``."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read trace {source}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"trace {source} is not UTF-8 text; give a CSV or YAML file of time, bundle, count"
        ) from None
    is_csv = source.suffix.lower() == ".csv"
    rows = _csv_rows(text, source) if is_csv else _yaml_rows(text, source)
    return Trace(name=source.name, steps=_steps(rows, source))


def _csv_rows(text: str, source: Path) -> list[_Row]:
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"time", "bundle", "count"} <= set(reader.fieldnames):
        raise ConfigError(f"{source}: the CSV header must be time,bundle,count")
    rows: list[_Row] = []
    for line, row in enumerate(reader, start=2):
        where = f"{source}:{line}"
        try:
            at, count = float(row["time"]), int(row["count"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: time must be a number and count an integer") from None
        rows.append((at, _bundle_text(row["bundle"] or "", where), count, where))
    return rows


def _bundle_text(text: str, where: str) -> dict[str, float]:
    try:
        return parse_amounts(text, separators=";,")
    except RepeatedName as exc:
        raise ConfigError(f"{where}: bundle {text!r}: {exc}; give each resource once") from None
    except ValueError as exc:
        raise ConfigError(
            f"{where}: bundle {text!r}: write NAME=AMOUNT pairs, e.g. CPU=4;GPU=1 (not {exc})"
        ) from None


def _yaml_rows(text: str, source: Path) -> list[_Row]:
    raw = parse_yaml(text, source)
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: expected a list of {{time, bundle, count}} (or a .csv file)")
    rows: list[_Row] = []
    for index, entry in enumerate(raw):
        where = f"{source}: [{index}]"
        if not isinstance(entry, dict) or set(entry) != {"time", "bundle", "count"}:
            raise ConfigError(f"{where}: give exactly time, bundle and count")
        try:
            item = DemandItem(bundle=entry["bundle"], count=entry["count"])
            at = float(entry["time"])
        except (ValidationError, TypeError, ValueError):
            raise ConfigError(
                f"{where}: bundle must map resources to amounts and count be an integer >= 0"
            ) from None
        rows.append((at, dict(item.bundle), item.count, where))
    return rows


def _steps(rows: list[_Row], source: Path) -> tuple[TraceStep, ...]:
    """One step per distinct time, in time order; rows at the same time add up."""
    by_time: dict[float, list[DemandItem]] = {}
    for at, bundle, count, where in rows:
        if at < 0 or not math.isfinite(at) or count < 0:
            raise ConfigError(f"{where}: time and count must be >= 0")
        items = by_time.setdefault(at, [])
        if count > 0:
            items.append(DemandItem(bundle=bundle, count=count))
    if not by_time:
        raise ConfigError(f"{source}: the trace is empty")
    return tuple(TraceStep(at=at, demand=tuple(items)) for at, items in sorted(by_time.items()))


def resolve_trace(
    spec: str, config: ClusterConfig, *, peak: int | None, duration: float, seed: int
) -> Trace:
    """A built-in trace by name (sized by ``peak``, default max_workers, in bundles of the
    first node type's resources), or a trace file; every bundle must fit some node type."""
    if spec in BUILTIN_TRACES:
        first = next(iter(config.available_node_types.values()))
        trace = builtin_trace(
            spec,
            peak=peak if peak is not None else config.max_workers,
            duration=duration,
            bundle=first.resources,
            seed=seed,
        )
    elif Path(spec).suffix.lower() in (".csv", ".yaml", ".yml"):
        trace = load_trace(spec)
    else:
        raise ConfigError(
            f"--trace {spec!r}: use one of {', '.join(BUILTIN_TRACES)} or a "
            ".csv/.yaml file of time, bundle, count"
        )
    for step in trace.steps:
        for item in step.demand:
            if not any(
                fits(item.bundle, t.resources) for t in config.available_node_types.values()
            ):
                raise ConfigError(
                    f"trace {trace.name} at {step.at:g}s: no node type can fit "
                    f"bundle {format_bundle(item.bundle)}"
                )
    return trace
