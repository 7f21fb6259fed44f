"""What ``steadyscale status`` shows: nodes by type and status, demand (and what of it no
node type can hold, and why), recent failures and the oldest instance EC2 does not show
yet, read from the ledger without its writer lock.

``StatusReport`` is the ``--json`` output; ``docs/status.schema.json`` is generated from it
(``python -m steadyscale.app.docgen``), so the published schema and the code cannot drift.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from steadyscale.config import ClusterConfig
from steadyscale.core.lifecycle import TERMINAL, Status
from steadyscale.core.resources import format_bundle
from steadyscale.retries.clock import Clock
from steadyscale.store.failures import Failure
from steadyscale.store.ledger import Ledger

# Every status a live node can have, in lifecycle order; finished nodes are not counted.
COLUMNS: list[str] = [s.value for s in Status if s not in TERMINAL]
FORMAT_VERSION = 1
FAILURES_SHOWN = 5


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeTypeStatus(_Out):
    instance_type: str = Field(description="EC2 instance type of the node type")
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=0)
    counts: dict[str, int] = Field(
        description="nodes by lifecycle status; a key for every status in `statuses`"
    )
    total: int = Field(ge=0, description="nodes of this type not yet finished")


class DemandEntry(_Out):
    bundle: dict[str, float] = Field(description="resources of one bundle, e.g. {CPU: 2}")
    count: int = Field(ge=0)


class FailureEntry(_Out):
    node_id: str
    node_type: str | None
    instance_id: str | None = Field(description="EC2 instance id, if the node had one")
    status: str = Field(
        description="launch_failed, interrupted or lost; terminating for a `held` node"
    )
    at: float = Field(
        description="when, in the autoscaler clock's seconds since the epoch; for a `held` "
        "node, when its termination was asked"
    )
    reason: str
    held: bool = Field(
        False,
        description="a node EC2 refuses to terminate (termination protection, a policy): "
        "listed first, until it is terminated, however old the refusal",
    )


class NotVisibleEntry(_Out):
    node_id: str
    node_type: str
    instance_id: str | None
    launched_at: float | None = Field(description="when RunInstances returned its id")
    seconds_since_launch: float = Field(ge=0)


class InfeasibleEntry(_Out):
    bundle: dict[str, float] = Field(description="resources of one bundle, e.g. {GPU: 1}")
    count: int = Field(ge=0)
    cause: str = Field(
        description="the first reason: not_offered (no node type offers the resource), "
        "too_large (more of it than any node type offers), not_together (no node type "
        "offers all of it at once) or no_node_types"
    )
    resource: str | None = Field(description="the resource not_offered or too_large names")
    why: str = Field(description='in words, e.g. "no node type offers GPU"')


class Progress(_Out):
    unmet: int = Field(ge=0, description="bundles left without a node by limits or pacing")
    infeasible: int = Field(
        ge=0, description="bundles no node type can hold: never met, whatever else holds"
    )
    infeasible_demand: list[InfeasibleEntry] = Field(
        default_factory=list,
        description="the bundles counted in `infeasible`, by shape, each with why",
    )
    feasible_met: bool = Field(
        False, description="all demand that fits a node type sits on ready nodes"
    )
    capacity_met: bool = Field(
        description="all demand sits on ready nodes: false while `infeasible` is above 0"
    )
    since: float = Field(
        description="the tick since which it stands so (seconds since the "
        "epoch): the daemon writes it only when it changes"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_an_earlier_daemon(cls, data: Any) -> Any:
        """An earlier daemon wrote capacity_met for the demand that fits, infeasible or not:
        read it as feasible_met, and as capacity_met only with nothing infeasible."""
        if isinstance(data, dict) and "feasible_met" not in data and "capacity_met" in data:
            met = bool(data["capacity_met"])
            data = {**data, "feasible_met": met, "capacity_met": met and not data["infeasible"]}
        return data


class StatusReport(_Out):
    """What ``steadyscale status --json`` prints: one object."""

    model_config = ConfigDict(title="steadyscale status")

    format_version: int = Field(FORMAT_VERSION, description="bumped on incompatible changes")
    cluster_name: str
    generated_at: float = Field(description="seconds since the epoch")
    statuses: list[str] = Field(description="the statuses counted, in lifecycle order")
    node_types: dict[str, NodeTypeStatus]
    totals: dict[str, int] = Field(description="nodes by status over every node type")
    demand: list[DemandEntry] = Field(description="the demand the autoscaler works toward")
    pending_demand: int = Field(ge=0, description="bundles demanded, all entries together")
    demand_updated_at: float | None
    progress: Progress | None = Field(
        description="where demand stood at the daemon's last tick; null before its first"
    )
    recent_failures: list[FailureEntry] = Field(
        description=f"the nodes EC2 refuses to terminate (`held`; up to {FAILURES_SHOWN}), then "
        f"the latest {FAILURES_SHOWN} moves to a failure status; each part newest first"
    )
    refused_terminations: int = Field(
        0, ge=0, description="nodes EC2 refuses to terminate, all of them (some may be unlisted)"
    )
    not_visible: int = Field(
        ge=0, description="launched nodes EC2 has not shown yet (eventual consistency)"
    )
    oldest_not_visible: NotVisibleEntry | None


def collect_status(config: ClusterConfig, ledger: Ledger, now: float | None = None) -> StatusReport:
    counts = ledger.counts_by_status()
    invisible = [r for r in ledger.nodes() if r.status is Status.LAUNCHED]
    failures = ledger.recent_failures(FAILURES_SHOWN)
    demand = ledger.demand()
    progress = ledger.progress()
    # The daemon's clock may run ahead of the wall (the embedded emulator's time scale):
    # never report a negative age.
    moment = max([time.time() if now is None else now, *(r.launched_at or 0.0 for r in invisible)])
    oldest = min(invisible, key=lambda r: r.launched_at or moment, default=None)
    node_types = {
        name: NodeTypeStatus(
            instance_type=t.instance_type,
            min_workers=t.min_workers,
            max_workers=t.max_workers,
            counts={c: counts.get(name, {}).get(c, 0) for c in COLUMNS},
            total=sum(counts.get(name, {}).get(c, 0) for c in COLUMNS),
        )
        for name, t in config.available_node_types.items()
    }
    return StatusReport(
        format_version=FORMAT_VERSION,
        cluster_name=config.cluster_name,
        generated_at=moment,
        statuses=COLUMNS,
        node_types=node_types,
        totals={c: sum(t.counts[c] for t in node_types.values()) for c in COLUMNS},
        demand=[DemandEntry(bundle=i.bundle, count=i.count) for i in demand],
        pending_demand=sum(i.count for i in demand),
        demand_updated_at=ledger.demand_updated_at(),
        progress=_progress(progress),
        recent_failures=[_failure(f) for f in (*failures.held, *failures.recent)],
        refused_terminations=failures.held_total,
        not_visible=len(invisible),
        oldest_not_visible=None
        if oldest is None
        else NotVisibleEntry(
            node_id=oldest.node_id,
            node_type=oldest.node_type,
            instance_id=oldest.instance_id,
            launched_at=oldest.launched_at,
            seconds_since_launch=round(moment - (oldest.launched_at or moment), 1),
        ),
    )


def _progress(written: dict[str, Any] | None) -> Progress | None:
    """The daemon's progress; keys a later steadyscale may add are left out, not refused."""
    if written is None:
        return None
    return Progress.model_validate({k: v for k, v in written.items() if k in Progress.model_fields})


def _failure(failure: Failure) -> FailureEntry:
    return FailureEntry(
        node_id=failure.node_id,
        node_type=failure.node_type,
        instance_id=failure.instance_id,
        status=failure.status.value,
        at=failure.at,
        reason=failure.reason,
        held=failure.held,
    )


def read_status(config: ClusterConfig, path: Path, now: float | None = None) -> StatusReport:
    """Open the ledger read-only (no writer lock), collect, close: safe beside a daemon."""
    ledger = Ledger(path, readonly=True)
    try:
        return collect_status(config, ledger, now)
    finally:
        ledger.close()


def status_view(report: StatusReport) -> RenderableType:
    """The status as rich renderables: a table of node types x statuses, then the rest."""
    table = Table(title=f"cluster {report.cluster_name}", title_justify="left")
    table.add_column("node type", style="bold")
    table.add_column("instance")
    table.add_column("min-max", justify="right")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("total", justify="right", style="bold")

    def cell(n: int) -> Text:
        return Text(str(n), style="dim" if n == 0 else "")

    for name, info in report.node_types.items():
        table.add_row(
            name,
            info.instance_type,
            f"{info.min_workers}-{info.max_workers}",
            *(cell(info.counts[c]) for c in COLUMNS),
            str(info.total),
        )
    parts: list[RenderableType] = [table]
    demand = ", ".join(f"{d.count} x {format_bundle(d.bundle)}" for d in report.demand)
    parts.append(Text(f"demand: {demand or 'none'}"))
    if report.progress is not None and demand:
        parts.extend(_progress_view(report.progress, report.pending_demand))
    oldest = report.oldest_not_visible
    if oldest is not None:
        parts.append(
            Text(
                f"not yet visible: {report.not_visible}; oldest {oldest.instance_id} "
                f"({oldest.node_type}), {oldest.seconds_since_launch:g}s since launch",
                style="yellow" if oldest.seconds_since_launch > 60 else "",
            )
        )
    else:
        parts.append(Text("not yet visible: 0"))
    if report.recent_failures:
        failures = Table(title="recent failures", title_justify="left", show_edge=False)
        for column in ("node", "type", "instance", "status", "reason"):
            failures.add_column(column)
        for f in report.recent_failures:
            # A held node is still there: its refusal stands until it is terminated.
            status = f"{f.status} (refused)" if f.held else f.status
            failures.add_row(
                f.node_id, f.node_type or "-", f.instance_id or "-", status, f.reason, style="red"
            )
        parts.append(failures)
        unlisted = report.refused_terminations - sum(f.held for f in report.recent_failures)
        if unlisted > 0:
            parts.append(Text(f"and {unlisted} more node(s) EC2 refuses to terminate", style="red"))
    else:
        parts.append(Text("recent failures: none"))
    return Group(*parts)


def _progress_view(progress: Progress, demanded: int) -> list[Text]:
    """Where demand stood at the daemon's last tick. Demand no node type can hold is never
    met: it is said first, in red, with why."""
    if progress.capacity_met:
        return [Text("demand met: on ready nodes", style="green")]
    lines = []
    if progress.infeasible:
        lines.append(
            Text(
                f"demand not met: {progress.infeasible} bundle(s) no node type can hold",
                style="red",
            )
        )
        lines.extend(
            Text(f"  {d.count} x {format_bundle(d.bundle)}: {d.why}", style="red")
            for d in progress.infeasible_demand
        )
        if demanded <= progress.infeasible:
            return lines
    if progress.feasible_met:
        lines.append(Text("the rest of the demand is met: on ready nodes", style="green"))
    else:
        lines.append(
            Text(
                f"demand not met yet: {progress.unmet} bundle(s) held back by limits or "
                "pacing; the rest wait for starting nodes",
                style="yellow",
            )
        )
    return lines


def render_status(report: StatusReport, *, width: int = 250) -> str:
    """The status as plain text (no colours), e.g. when stdout is not a terminal: as wide
    as the table needs (up to ``width``), with no trailing blanks."""
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, force_terminal=False).print(
        status_view(report)
    )
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def watch_status(
    read: Callable[[], StatusReport],
    *,
    interval: float,
    clock: Clock,
    console: Console,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Show the status and refresh it every ``interval`` seconds until Ctrl-C (or until
    ``keep_going`` says stop). Returns how many times it was drawn."""
    frames = 1
    try:
        if not console.is_terminal:
            # Piped (into tee, a file): one frame after another, nothing redrawn.
            console.print(status_view(read()))
            while keep_going():
                clock.sleep(interval)
                console.print(status_view(read()))
                frames += 1
            return frames
        with Live(status_view(read()), console=console, auto_refresh=False) as live:
            while keep_going():
                clock.sleep(interval)
                live.update(status_view(read()), refresh=True)
                frames += 1
    except KeyboardInterrupt:
        pass
    return frames
