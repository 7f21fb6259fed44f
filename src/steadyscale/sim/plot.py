"""report.png: the demand against nodes by status after each tick, above the API calls per
minute by action. matplotlib loads only when a plot is drawn."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from steadyscale.core.lifecycle import Status

if TYPE_CHECKING:
    from steadyscale.sim.report import SimulationResult

# Statuses drawn on the plot, bottom to top.
PLOTTED = (
    Status.READY,
    Status.RUNNING,
    Status.PENDING,
    Status.LAUNCHED,
    Status.REQUESTED,
    Status.TERMINATING,
)


def plot(result: SimulationResult, path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    minutes = [s.at / 60.0 for s in result.samples]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    layers = [[s.counts.get(status.value, 0) for s in result.samples] for status in PLOTTED]
    top.stackplot(minutes, layers, labels=[s.value for s in PLOTTED], alpha=0.8, step="post")
    top.step(
        minutes,
        [s.demand for s in result.samples],
        where="post",
        color="black",
        linewidth=1.5,
        label="demand (bundles)",
    )
    top.set_ylabel("nodes")
    report = result.report
    top.set_title(
        f"steadyscale simulate: trace {report.trace}, seed {report.seed}, profile "
        f"{report.model_profile}"
    )
    top.legend(loc="upper right", fontsize="small")
    span = max(1, math.ceil(report.duration_seconds / 60.0))
    per_minute = calls_per_minute(result.calls, span)
    bottoms = [0] * span
    for action, counts in sorted(per_minute.items()):
        bottom.bar(range(span), counts, bottom=bottoms, width=1.0, align="edge", label=action)
        bottoms = [a + b for a, b in zip(bottoms, counts, strict=True)]
    bottom.set_ylabel("API calls / min")
    bottom.set_xlabel("minutes")
    if per_minute:
        bottom.legend(loc="upper right", fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def calls_per_minute(calls: list[tuple[float, str]], span: int) -> dict[str, list[int]]:
    """Calls by action in each of ``span`` minutes; a call past the end counts in the last."""
    per_minute: dict[str, list[int]] = {}
    for at, action in calls:
        index = min(span - 1, max(0, int(at // 60)))
        per_minute.setdefault(action, [0] * span)[index] += 1
    return per_minute
