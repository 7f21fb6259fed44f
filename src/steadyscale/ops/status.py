"""What ``steadyscale status`` shows: nodes by type and status (node types the config no
longer has too, while their nodes live), the nodes a config change retires, demand (and
what of it no node type can hold, and why), recent failures and the oldest instance EC2
does not show yet, read from the ledger without its writer lock.

``StatusReport`` (``ops.status_report``) is the ``--json`` output, and the published schema.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from steadyscale.config import ClusterConfig, DatabaseURL, LedgerLocation
from steadyscale.core.lifecycle import NodeRecord, Status
from steadyscale.core.resources import format_bundle
from steadyscale.ops.status_report import (
    COLUMNS,
    FAILURES_SHOWN,
    FORMAT_VERSION,
    DemandEntry,
    FailureEntry,
    LeaseEntry,
    MarkEntry,
    NotVisibleEntry,
    Progress,
    StatusReport,
    UnknownEntry,
)
from steadyscale.ops.status_rows import node_type_rows, priced_rows
from steadyscale.retries.clock import Clock
from steadyscale.store.changes import change_plan
from steadyscale.store.demand_entries import read_entries
from steadyscale.store.failures import Failure
from steadyscale.store.ledger import UNKNOWN_INSTANCES, Ledger
from steadyscale.store.marks import Marks

__all__ = [
    "COLUMNS",
    "StatusReport",
    "collect_status",
    "ledger_status",
    "read_status",
    "render_status",
    "status_view",
    "watch_status",
]


def collect_status(config: ClusterConfig, ledger: Ledger, now: float | None = None) -> StatusReport:
    counts = ledger.counts_by_status()
    records = ledger.nodes()
    invisible = [r for r in records if r.status is Status.LAUNCHED]
    failures = ledger.recent_failures(FAILURES_SHOWN)
    demand = ledger.demand()
    progress = ledger.progress()
    # The daemon's clock may run ahead of the wall (the embedded emulator's time scale):
    # never report a negative age.
    moment = max([time.time() if now is None else now, *(r.launched_at or 0.0 for r in invisible)])
    oldest = min(invisible, key=lambda r: r.launched_at or moment, default=None)
    plan = change_plan(ledger, config.available_node_types, records)
    node_types = priced_rows(node_type_rows(config, ledger, counts, plan), records)
    return StatusReport(
        format_version=FORMAT_VERSION,
        cluster_name=config.cluster_name,
        generated_at=moment,
        statuses=COLUMNS,
        node_types=node_types,
        totals={c: sum(t.counts[c] for t in node_types.values()) for c in COLUMNS},
        cost_per_hour=round(sum(t.cost_per_hour for t in node_types.values()), 4),
        demand=[DemandEntry(bundle=i.bundle, count=i.count) for i in demand],
        demand_entries={
            name: [DemandEntry(bundle=i.bundle, count=i.count) for i in items]
            for name, items in read_entries(ledger.store).items()
        },
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
        retiring=len(plan.retiring),
        retiring_reasons=dict(Counter(plan.retiring.values())),
        relabel_pending=dict(plan.renames),
        ledger_id=ledger.ledger_id,
        unknown_instances=_unknown(ledger.meta(UNKNOWN_INSTANCES)),
        events=_marks(ledger, {r.node_id: r for r in records}),
        lease=None,  # (read_status fills it in for a database ledger)
    )


def _unknown(text: str | None) -> list[UnknownEntry]:
    """The unknown instances the daemon listed last; keys a later steadyscale may add are
    left out, not refused."""
    if not text:
        return []
    fields = UnknownEntry.model_fields
    return [
        UnknownEntry.model_validate({k: v for k, v in entry.items() if k in fields})
        for entry in json.loads(text)
    ]


def _marks(ledger: Ledger, live: dict[str, NodeRecord]) -> list[MarkEntry]:
    """What EC2's events said of live nodes, the soonest deadline first."""
    marks = [m for m in Marks(ledger.store).all() if m.node_id in live]
    marks.sort(key=lambda m: (m.deadline is None, m.deadline or 0.0, m.at, m.node_id))
    return [
        MarkEntry(
            node_id=m.node_id,
            node_type=live[m.node_id].node_type,
            instance_id=live[m.node_id].instance_id,
            kind=m.kind.value,
            at=m.at,
            deadline=m.deadline,
        )
        for m in marks
    ]


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


def read_status(
    config: ClusterConfig, path: LedgerLocation, now: float | None = None
) -> StatusReport:
    """Open the ledger read-only (no writer lock), collect, close: safe beside a daemon."""
    ledger = Ledger(path, readonly=True)
    try:
        return ledger_status(config, ledger, now)
    finally:
        ledger.close()


def ledger_status(config: ClusterConfig, ledger: Ledger, now: float | None = None) -> StatusReport:
    """The status of an open ledger, with the replicas' lease of a database ledger."""
    report = collect_status(config, ledger, now)
    if isinstance(ledger.location, DatabaseURL):
        report = report.model_copy(update={"lease": _lease(ledger)})
    return report


def _lease(ledger: Ledger) -> LeaseEntry | None:
    from steadyscale.store.postgres import PostgresStore  # noqa: PLC0415 - psycopg only here

    store = ledger.store
    held = store.lease() if isinstance(store, PostgresStore) else None
    if held is None:
        return None
    return LeaseEntry(
        holder=held.holder, epoch=held.epoch, expires_in_seconds=round(held.expires_in_seconds, 1)
    )


def status_view(report: StatusReport) -> RenderableType:
    """The status as rich renderables: a table of node types x statuses, then the rest."""
    table = Table(title=f"cluster {report.cluster_name}", title_justify="left")
    table.add_column("node type", style="bold")
    table.add_column("instance")
    table.add_column("min-max", justify="right")
    for column in COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    table.add_column("total", justify="right", style="bold")
    table.add_column("$/hour", justify="right")

    def cell(n: int) -> Text:
        return Text(str(n), style="dim" if n == 0 else "")

    for name, info in report.node_types.items():
        table.add_row(
            name if info.configured else Text(f"{name} (removed)", style="yellow"),
            info.instance_type,
            f"{info.min_workers}-{info.max_workers}",
            *(cell(info.counts[c]) for c in COLUMNS),
            str(info.total),
            f"{info.cost_per_hour:.2f}" + ("+?" if info.unpriced else ""),
        )
    parts: list[RenderableType] = [
        table,
        *_changes_view(report),
        *_events_view(report),
        *_unknown_view(report),
    ]
    if report.lease is not None:
        parts.append(_lease_view(report.lease))
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
    return Group(*parts, *_failures_view(report))


def _failures_view(report: StatusReport) -> list[RenderableType]:
    """The latest failures, and first every node EC2 refuses to terminate."""
    if not report.recent_failures:
        return [Text("recent failures: none")]
    failures = Table(title="recent failures", title_justify="left", show_edge=False)
    for column in ("node", "type", "instance", "status", "reason"):
        failures.add_column(column)
    for f in report.recent_failures:
        # A held node is still there: its refusal stands until it is terminated.
        status = f"{f.status} (refused)" if f.held else f.status
        failures.add_row(
            f.node_id, f.node_type or "-", f.instance_id or "-", status, f.reason, style="red"
        )
    parts: list[RenderableType] = [failures]
    unlisted = report.refused_terminations - sum(f.held for f in report.recent_failures)
    if unlisted > 0:
        parts.append(Text(f"and {unlisted} more node(s) EC2 refuses to terminate", style="red"))
    return parts


def _changes_view(report: StatusReport) -> list[RenderableType]:
    """The nodes a config change retires, and the renames the daemon has not applied yet."""
    parts: list[RenderableType] = []
    if report.retiring:
        why = "; ".join(f"{n} x {reason}" for reason, n in report.retiring_reasons.items())
        parts.append(
            Text(
                f"retiring: {report.retiring} node(s), each terminated once ready nodes of a "
                f"configured type hold its demand ({why})",
                style="yellow",
            )
        )
    if report.relabel_pending:
        renames = ", ".join(f"{old} -> {new}" for old, new in report.relabel_pending.items())
        parts.append(Text(f"re-labelled when the daemon starts with this config: {renames}"))
    return parts


def _events_view(report: StatusReport) -> list[RenderableType]:
    """The nodes EC2's events marked: how many of each kind, and the soonest deadline."""
    if not report.events:
        return []
    kinds = Counter(m.kind for m in report.events)
    line = "EC2 events: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
    soonest = report.events[0]
    if soonest.deadline is not None:
        left = soonest.deadline - report.generated_at
        when = f"in {left:.0f}s" if left > 0 else f"{-left:.0f}s ago"
        line += (
            f"; soonest deadline {when}: {soonest.instance_id or soonest.node_id} "
            f"({soonest.node_type}, {soonest.kind})"
        )
    return [Text(line + "; replacements go ahead of EC2", style="yellow")]


def _unknown_view(report: StatusReport) -> list[RenderableType]:
    """Cluster instances the ledger cannot explain: left alone, and how to take them over."""
    unknown = report.unknown_instances
    if not unknown:
        return []
    shown = ", ".join(f"{u.instance_id} ({u.reason})" for u in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return [
        Text(
            f"unknown instances: {len(unknown)} tagged with the cluster that the ledger cannot "
            f"explain, left alone (never terminated): {shown}{more}; "
            "`steadyscale ledger adopt CONFIG` takes them over",
            style="yellow",
        )
    ]


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


def _lease_view(lease: LeaseEntry) -> Text:
    if lease.expires_in_seconds > 0:
        return Text(
            f"leader: {lease.holder} (lease epoch {lease.epoch}, expires in "
            f"{lease.expires_in_seconds:.0f}s)"
        )
    return Text(
        f"leader: none (the lease of {lease.holder}, epoch {lease.epoch}, expired "
        f"{-lease.expires_in_seconds:.0f}s ago)",
        style="yellow",
    )


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
