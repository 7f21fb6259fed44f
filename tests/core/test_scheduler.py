"""The scheduler, pure: packing, bin-packing by utilization, limits, pacing, scale-down."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from steadyscale.config import NodeType
from steadyscale.core.lifecycle import STARTING, Status
from steadyscale.core.resources import DemandItem, fits
from steadyscale.core.scheduler import NodeView, SchedulingInput, schedule


def _type(
    resources: dict[str, float],
    *,
    min_workers: int = 0,
    max_workers: int = 100,
    priority: int = 0,
    instance_type: str = "m5.large",
) -> NodeType:
    return NodeType(
        node_config={"InstanceType": instance_type, "ImageId": "ami-1"},
        resources=resources,
        min_workers=min_workers,
        max_workers=max_workers,
        priority=priority,
    )


def _input(
    types: dict[str, NodeType],
    demand: list[tuple[dict[str, float], int]],
    nodes: Sequence[NodeView] = (),
    **kwargs: Any,
) -> SchedulingInput:
    values: dict[str, Any] = {
        "max_workers": 1000,
        "upscaling_speed": 1000.0,
        "idle_timeout_seconds": 60.0,
        "now": 1000.0,
    }
    values.update(kwargs)
    return SchedulingInput(
        node_types=types,
        demand=[DemandItem(bundle=b, count=c) for b, c in demand],
        nodes=list(nodes),
        **values,
    )


def _node(
    i: int, node_type: str = "cpu", status: Status = Status.READY, idle_since: float | None = None
) -> NodeView:
    return NodeView(
        node_id=f"n-{i}",
        node_type=node_type,
        status=status,
        created_at=float(i),
        idle_since=idle_since,
    )


CPU4 = {"cpu": _type({"CPU": 4})}


def test_demand_goes_onto_existing_and_pending_nodes_first() -> None:
    nodes = [_node(1), _node(2, status=Status.LAUNCHED)]
    decision = schedule(_input(CPU4, [({"CPU": 2}, 4)], nodes))
    assert decision.launch == {}
    assert decision.busy == {"n-1", "n-2"}


def test_the_rest_is_bin_packed_into_new_nodes() -> None:
    decision = schedule(_input(CPU4, [({"CPU": 2}, 5)], [_node(1)]))
    assert decision.launch == {"cpu": 2}  # 2 on n-1, 3 more need 2 nodes


def test_the_least_wasteful_type_wins_then_priority() -> None:
    types = {
        "small": _type({"CPU": 2}),
        "big": _type({"CPU": 16}),
        "gpu": _type({"CPU": 8, "GPU": 1}, priority=5),
    }
    assert schedule(_input(types, [({"CPU": 2}, 1)])).launch == {"small": 1}
    assert schedule(_input(types, [({"CPU": 1, "GPU": 1}, 1)])).launch == {"gpu": 1}
    tied = {"a": _type({"CPU": 2}), "b": _type({"CPU": 2}, priority=1)}
    assert schedule(_input(tied, [({"CPU": 2}, 1)])).launch == {"b": 1}


def test_a_bundle_no_type_fits_is_infeasible_not_launched() -> None:
    decision = schedule(_input(CPU4, [({"GPU": 1}, 3), ({"CPU": 2}, 1)]))
    assert decision.infeasible == (DemandItem(bundle={"GPU": 1}, count=3),)
    assert decision.launch == {"cpu": 1}


def test_unavailable_types_fall_back_to_the_next_best() -> None:
    types = {"small": _type({"CPU": 2}), "big": _type({"CPU": 8})}
    decision = schedule(_input(types, [({"CPU": 2}, 1)], unavailable_types=frozenset({"small"})))
    assert decision.launch == {"big": 1}


def test_upscaling_speed_caps_nodes_starting_at_once() -> None:
    decision = schedule(_input(CPU4, [({"CPU": 4}, 50)], upscaling_speed=1.0))
    assert decision.launch == {"cpu": 5}
    running = [_node(i) for i in range(10)]
    decision = schedule(_input(CPU4, [({"CPU": 4}, 50)], running, upscaling_speed=2.0))
    assert decision.launch == {"cpu": 20}
    assert decision.unmet == 20


def test_min_workers_are_kept_without_demand() -> None:
    types = {"cpu": _type({"CPU": 4}, min_workers=3)}
    assert schedule(_input(types, [])).launch == {"cpu": 3}
    idle = [_node(i, idle_since=0.0) for i in range(4)]
    decision = schedule(_input(types, [], idle))
    assert len(decision.drop) == 1


def test_idle_nodes_go_after_the_timeout_pending_ones_first() -> None:
    nodes = [
        _node(1, idle_since=990.0),
        _node(2, idle_since=900.0),
        _node(3, status=Status.LAUNCHED, idle_since=900.0),
        _node(4, status=Status.QUEUED),
    ]
    decision = schedule(_input(CPU4, [], nodes))
    assert decision.drop == ("n-4", "n-3", "n-2")  # n-1 is idle for 10 s only


def test_requested_nodes_are_never_dropped() -> None:
    decision = schedule(_input(CPU4, [], [_node(1, status=Status.REQUESTED, idle_since=0.0)]))
    assert decision.drop == ()


def test_lowered_max_workers_drops_idle_extras() -> None:
    types = {"cpu": _type({"CPU": 4}, max_workers=1)}
    nodes = [_node(1, idle_since=1000.0), _node(2, idle_since=1000.0)]
    assert len(schedule(_input(types, [], nodes)).drop) == 1


resources = st.dictionaries(
    st.sampled_from(["CPU", "GPU", "memory"]), st.integers(1, 16).map(float), min_size=1, max_size=3
)
node_types = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.builds(
        lambda r, lo, extra, p: _type(r, min_workers=lo, max_workers=lo + extra, priority=p),
        resources,
        st.integers(0, 3),
        st.integers(0, 20),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def scenarios(draw: st.DrawFn) -> SchedulingInput:
    types = draw(node_types)
    demand = draw(st.lists(st.tuples(resources, st.integers(0, 30)), max_size=4))
    statuses = [
        Status.READY,
        Status.RUNNING,
        Status.PENDING,
        Status.LAUNCHED,
        Status.REQUESTED,
        Status.QUEUED,
    ]
    nodes = [
        NodeView(
            node_id=f"n-{i}",
            node_type=draw(st.sampled_from(sorted(types))),
            status=draw(st.sampled_from(statuses)),
            created_at=float(i),
            idle_since=draw(st.none() | st.floats(0, 1000)),
        )
        for i in range(draw(st.integers(0, 25)))
    ]
    return _input(
        types,
        demand,
        nodes,
        max_workers=draw(st.integers(0, 60)),
        upscaling_speed=draw(st.floats(0.5, 10)),
        idle_timeout_seconds=draw(st.floats(0, 600)),
    )


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_limits_hold(inp: SchedulingInput) -> None:
    decision = schedule(inp)
    for name, t in inp.node_types.items():
        existing = sum(1 for n in inp.nodes if n.node_type == name)
        launched = decision.launch.get(name, 0)
        assert launched >= 0
        # Never beyond a type's max, unless min_workers itself asks for it.
        if launched:
            assert existing + launched <= max(t.max_workers, t.min_workers)
        # min_workers always kept.
        dropped = sum(1 for n in inp.nodes if n.node_id in decision.drop and n.node_type == name)
        assert existing - dropped + launched >= min(t.min_workers, existing + launched)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_pacing_and_cluster_max(inp: SchedulingInput) -> None:
    decision = schedule(inp)
    running = sum(1 for n in inp.nodes if n.status is Status.READY)
    starting = sum(1 for n in inp.nodes if n.status in STARTING)
    cap = max(5, math.floor(inp.upscaling_speed * max(1, running)))
    min_shortfall = sum(
        max(0, t.min_workers - sum(1 for n in inp.nodes if n.node_type == name))
        for name, t in inp.node_types.items()
    )
    total_launch = sum(decision.launch.values())
    assert total_launch <= max(0, cap - starting) + min_shortfall
    assert total_launch <= max(0, inp.max_workers - len(inp.nodes)) + min_shortfall


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_property_busy_nodes_are_never_dropped_and_infeasible_really_fits_nothing(
    inp: SchedulingInput,
) -> None:
    decision = schedule(inp)
    assert not set(decision.drop) & decision.busy
    for item in decision.infeasible:
        assert not any(fits(item.bundle, t.resources) for t in inp.node_types.values())


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_property_when_nothing_is_unmet_all_demand_has_room(inp: SchedulingInput) -> None:
    decision = schedule(inp)
    if decision.unmet or decision.infeasible:
        return
    # Capacity of busy nodes plus new ones covers every demanded resource.
    capacity: dict[str, float] = {}
    for n in inp.nodes:
        if n.node_id in decision.busy:
            for k, v in inp.node_types[n.node_type].resources.items():
                capacity[k] = capacity.get(k, 0) + v
    for name, count in decision.launch.items():
        for k, v in inp.node_types[name].resources.items():
            capacity[k] = capacity.get(k, 0) + v * count
    for item in inp.demand:
        for k, v in item.bundle.items():
            capacity[k] = capacity.get(k, 0) - v * item.count
    assert all(v >= -1e-6 for v in capacity.values())
