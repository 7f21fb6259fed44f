"""Scale-down with usage reports, pure: a node reported busy is never dropped (I9), with
``scale_down: reported`` the node reported idle longest goes first, and packing decides
only for nodes nobody reports on; without reports, scale-down is as it always was."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from steadyscale.config import NodeType
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.core.scheduler import NodeView, SchedulingInput, schedule
from steadyscale.core.usage import NO_USAGE, NodeUsage, Usage

NOW = 1000.0


def _types(mode: str = "reported", *, min_workers: int = 0, max_workers: int = 100) -> Any:
    return {
        "cpu": NodeType(
            node_config={"InstanceType": "m5.large", "ImageId": "ami-1"},
            resources={"CPU": 4},
            min_workers=min_workers,
            max_workers=max_workers,
            scale_down=mode,  # type: ignore[arg-type]
        )
    }


def _node(i: int, idle_since: float | None = None, status: Status = Status.READY) -> NodeView:
    return NodeView(f"n-{i}", "cpu", status, float(i), idle_since)


def _drop(
    nodes: list[NodeView],
    usage: Usage = NO_USAGE,
    *,
    demand: int = 0,
    types: Any = None,
) -> tuple[str, ...]:
    decision = schedule(
        SchedulingInput(
            node_types=types or _types(),
            max_workers=1000,
            upscaling_speed=1000.0,
            idle_timeout_seconds=60.0,
            now=NOW,
            demand=[DemandItem(bundle={"CPU": 4}, count=demand)] if demand else [],
            nodes=nodes,
            usage=usage,
        )
    )
    return decision.drop


def _usage(
    reports: dict[str, NodeUsage] | None = None, mode_types: frozenset[str] = frozenset({"cpu"})
) -> Usage:
    """Reports by node number, for node types in ``scale_down: reported`` mode."""
    return Usage({f"n-{k}": v for k, v in (reports or {}).items()}, mode_types)


IDLE_LONG = NodeUsage(busy=False, idle_since=NOW - 500)
IDLE_LESS = NodeUsage(busy=False, idle_since=NOW - 100)
IDLE_NEW = NodeUsage(busy=False, idle_since=NOW - 10)
BUSY = NodeUsage(busy=True)


def test_the_node_reported_idle_longest_goes_not_the_one_packing_left_empty() -> None:
    # Demand needs 2 of 3 nodes; packing puts it on the oldest two (n-1, n-2) and leaves
    # n-3 empty, but the workload runs on n-3 and n-2, and n-1 is idle.
    nodes = [_node(1), _node(2), _node(3, idle_since=NOW - 900)]
    usage = _usage({"1": IDLE_LONG, "2": BUSY, "3": BUSY})
    assert _drop(nodes, usage, demand=2) == ("n-1",)


def test_packed_mode_drops_the_empty_node_unless_it_is_reported_busy() -> None:
    nodes = [_node(1), _node(2), _node(3, idle_since=NOW - 900)]
    assert _drop(nodes, demand=2, types=_types("packed")) == ("n-3",)
    busy = _usage({"3": BUSY}, frozenset())
    assert _drop(nodes, busy, demand=2, types=_types("packed")) == ()


def test_idle_reports_go_longest_first_and_only_past_the_idle_timeout() -> None:
    nodes = [_node(1), _node(2), _node(3)]
    usage = _usage({"1": IDLE_LESS, "2": IDLE_LONG, "3": IDLE_NEW})
    assert _drop(nodes, usage) == ("n-2", "n-1")  # n-3 idle 10 s of the 60 s timeout


def test_a_node_that_never_became_useful_goes_before_one_reported_idle() -> None:
    nodes = [_node(1), _node(2, status=Status.QUEUED)]
    assert _drop(nodes, _usage({"1": IDLE_LONG}), demand=1) == ("n-2",)


def test_as_many_stay_as_the_demand_needs_and_min_workers_hold() -> None:
    nodes = [_node(1), _node(2), _node(3)]
    usage = _usage({"1": IDLE_LESS, "2": IDLE_LONG, "3": IDLE_LONG})
    assert len(_drop(nodes, usage, demand=2)) == 1
    assert _drop(nodes, usage, types=_types(min_workers=2)) == ("n-2",)


def test_nodes_nobody_reports_on_fall_back_to_packing() -> None:
    # n-2 is unreported and holds no demand: packed as today; n-1 is reported idle.
    nodes = [_node(1), _node(2, idle_since=NOW - 900), _node(3)]
    usage = _usage({"1": IDLE_LONG, "3": BUSY})
    assert _drop(nodes, usage) == ("n-1", "n-2")
    # Unreported n-2 holding the demand (packed first: oldest) stays.
    nodes = [_node(2), _node(4, idle_since=NOW - 900)]
    assert _drop(nodes, _usage(), demand=1) == ("n-4",)


def test_a_lowered_maximum_never_takes_a_busy_node() -> None:
    nodes = [_node(1), _node(2), _node(3)]
    usage = _usage({"1": BUSY, "2": BUSY, "3": IDLE_NEW})
    assert _drop(nodes, usage, types=_types(max_workers=1)) == ("n-3",)


def test_a_retiring_node_reported_busy_is_held() -> None:
    gone = NodeView("n-9", "gone", Status.READY, 9.0, NOW - 900, True)
    assert _drop([gone], _usage({"9": BUSY})) == ()
    assert _drop([gone]) == ("n-9",)


_STATUSES = st.sampled_from(
    [Status.QUEUED, Status.LAUNCHED, Status.PENDING, Status.RUNNING, Status.READY]
)
_REPORT = st.one_of(
    st.none(),
    st.just(BUSY),
    st.builds(NodeUsage, st.just(False), st.floats(0, NOW)),
)


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(
        st.tuples(_STATUSES, st.one_of(st.none(), st.floats(0, NOW)), _REPORT, st.booleans()),
        max_size=12,
    ),
    demand=st.integers(0, 20),
    mode=st.sampled_from(["packed", "reported"]),
    min_workers=st.integers(0, 3),
    max_workers=st.integers(3, 15),
)
def test_a_node_reported_busy_is_never_dropped(
    nodes: list[tuple[Status, float | None, NodeUsage | None, bool]],
    demand: int,
    mode: str,
    min_workers: int,
    max_workers: int,
) -> None:
    views = [
        NodeView(f"n-{i}", "cpu" if known else "gone", status, float(i), idle, not known)
        for i, (status, idle, _, known) in enumerate(nodes)
    ]
    reports = {f"n-{i}": r for i, (_, _, r, _) in enumerate(nodes) if r is not None}
    usage = Usage(reports, frozenset({"cpu"}) if mode == "reported" else frozenset())
    types = _types(mode, min_workers=min_workers, max_workers=max_workers)
    dropped = _drop(views, usage, demand=demand, types=types)
    assert not [n for n in dropped if reports.get(n) == BUSY]
    # The floor: never below min_workers of what there was.
    kept = [v for v in views if v.node_type == "cpu" and v.node_id not in dropped]
    there = [v for v in views if v.node_type == "cpu"]
    assert len(kept) >= min(min_workers, len(there))
