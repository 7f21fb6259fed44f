"""The scheduler's rules for retiring nodes, pure: no new demand on them, none dropped while
its demand has no ready replacement (make before break), at most max_surge replacements
starting beyond what the demand needs, min_workers held until replacements are ready."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from steadyscale.config import NodeType
from steadyscale.core.lifecycle import Status
from steadyscale.core.resources import DemandItem
from steadyscale.core.scheduler import NodeView, SchedulingInput, schedule

CPU2 = {"CPU": 2.0}


def _type(cpu: float = 2, **kwargs: Any) -> NodeType:
    kwargs.setdefault("max_workers", 100)
    return NodeType(
        node_config={"InstanceType": "m5.large", "ImageId": "ami-1"},
        resources={"CPU": cpu},
        **kwargs,
    )


def _node(
    name: str, node_type: str, status: Status = Status.READY, *, retiring: bool = False
) -> NodeView:
    return NodeView(name, node_type, status, created_at=0.0, retiring=retiring)


def _old(n: int, status: Status = Status.READY, node_type: str = "cpu") -> list[NodeView]:
    return [_node(f"old-{i}", node_type, status, retiring=True) for i in range(n)]


def _new(n: int, status: Status = Status.READY, node_type: str = "cpu") -> list[NodeView]:
    return [_node(f"new-{i}", node_type, status) for i in range(n)]


def _input(
    nodes: list[NodeView],
    demand: int,
    types: dict[str, NodeType] | None = None,
    bundle: dict[str, float] | None = None,
    **kwargs: Any,
) -> SchedulingInput:
    values: dict[str, Any] = {
        "max_workers": 1000,
        "upscaling_speed": 1000.0,
        "idle_timeout_seconds": 60.0,
        "now": 1000.0,
        "max_surge": 100,
    }
    values.update(kwargs)
    return SchedulingInput(
        node_types=types or {"cpu": _type()},
        demand=[DemandItem(bundle=bundle or CPU2, count=demand)] if demand else [],
        nodes=nodes,
        **values,
    )


def test_no_new_demand_goes_on_a_retiring_node_and_it_stays_until_a_replacement_is_ready() -> None:
    decision = schedule(_input(_old(1), 1))
    assert decision.launch == {"cpu": 1}  # the retiring node could hold it: not counted
    assert decision.drop == ()
    assert decision.busy == {"old-0"}
    decision = schedule(_input(_old(1) + _new(1, Status.PENDING), 1))
    assert (decision.launch, decision.drop) == ({}, ())
    assert decision.busy == {"old-0", "new-0"}
    decision = schedule(_input(_old(1) + _new(1, Status.RUNNING), 1))
    assert decision.drop == ()  # running is not ready (a health check may still be due)
    decision = schedule(_input(_old(1) + _new(1), 1))
    assert (decision.launch, decision.drop) == ({}, ("old-0",))


def test_a_retiring_node_without_demand_goes_at_once_not_after_the_idle_timeout() -> None:
    decision = schedule(_input(_old(2), 0))
    assert set(decision.drop) == {"old-0", "old-1"}
    assert decision.launch == {}


def test_a_node_of_a_type_the_config_does_not_have_retires_unflagged() -> None:
    busy = NodeView("gone-0", "gone", Status.READY, 0.0)
    decision = schedule(_input([busy], 1, retired_resources={"gone": CPU2}))
    assert decision.launch == {"cpu": 1}
    assert decision.drop == ()
    assert schedule(_input([busy], 1, retired_resources={"gone": CPU2}, max_surge=1)).launch == {
        "cpu": 1
    }
    assert schedule(_input([busy], 0)).drop == ("gone-0",)


def test_a_retiring_node_holds_demand_by_what_it_offers_not_by_what_its_type_offers_now() -> None:
    # Launched as {CPU: 2} each; the type now launches {CPU: 4}: each holds one bundle.
    types = {"cpu": _type(cpu=4)}
    own = {n.node_id: CPU2 for n in _old(6)}
    decision = schedule(_input(_old(6), 6, types, retiring_offers=own, max_surge=1))
    assert decision.drop == ()
    assert decision.busy == {n.node_id for n in _old(6)}
    assert decision.launch == {"cpu": 1}
    decision = schedule(_input(_old(6) + _new(1), 6, types, retiring_offers=own, max_surge=1))
    assert len(decision.drop) == 2  # the ready {CPU: 4} node holds two of their bundles


def test_retiring_nodes_do_not_count_toward_max_workers() -> None:
    decision = schedule(_input(_old(3), 3, max_workers=3))
    assert decision.launch == {"cpu": 3}
    assert decision.unmet == 0


def test_max_surge_bounds_the_replacements_starting_at_once() -> None:
    assert schedule(_input(_old(6), 6, max_surge=2)).launch == {"cpu": 2}
    two_starting = _old(6) + _new(2, Status.PENDING)
    assert schedule(_input(two_starting, 6, max_surge=2)).launch == {}
    two_ready = _old(6) + _new(2)
    decision = schedule(_input(two_ready, 6, max_surge=2))
    assert len(decision.drop) == 2
    assert decision.launch == {"cpu": 2}


def test_a_replacement_type_that_holds_more_per_node_still_replaces_max_surge_at_a_time() -> None:
    # Six retiring nodes hold one bundle each; a node of the new type holds two: three
    # replace them all. The surge counts replacements in new nodes, never stalls.
    types, gone = {"big": _type(cpu=4)}, {"gone": CPU2}
    old = _old(6, node_type="gone")
    assert schedule(_input(old, 6, types, retired_resources=gone, max_surge=2)).launch == {"big": 2}
    starting = old + _new(2, Status.PENDING, node_type="big")
    assert schedule(_input(starting, 6, types, retired_resources=gone, max_surge=2)).launch == {}
    decision = schedule(_input(old + _new(2, node_type="big"), 6, types, retired_resources=gone))
    assert len(decision.drop) == 4
    assert decision.launch == {"big": 1}


def test_a_replacement_type_that_holds_less_per_node_starts_max_surge_at_a_time() -> None:
    # Three retiring nodes hold two bundles each; six new nodes replace them, two at a time.
    old = _old(3, node_type="gone")
    inp = _input(old, 6, retired_resources={"gone": {"CPU": 4.0}}, max_surge=2)
    assert schedule(inp).launch == {"cpu": 2}


def test_new_demand_during_a_replacement_is_not_held_back_by_the_surge() -> None:
    nodes = _old(6) + _new(2, Status.PENDING)
    decision = schedule(_input(nodes, 16, max_surge=2))
    assert decision.launch == {"cpu": 10}
    assert decision.drop == ()


def test_min_workers_are_held_by_retiring_nodes_until_replacements_are_ready() -> None:
    types = {"cpu": _type(min_workers=2)}
    decision = schedule(_input(_old(2), 0, types, max_surge=1))
    assert decision.drop == ()
    assert decision.launch == {"cpu": 1}
    decision = schedule(_input(_old(2) + _new(1, Status.PENDING), 0, types, max_surge=1))
    assert (decision.drop, decision.launch) == ((), {})
    decision = schedule(_input(_old(2) + _new(1), 0, types, max_surge=1))
    assert len(decision.drop) == 1
    assert decision.launch == {"cpu": 1}


def test_demand_no_configured_type_fits_stays_on_its_retiring_node() -> None:
    gpu = NodeView("gpu-0", "gpu", Status.READY, 0.0, retiring=True)
    inp = SchedulingInput(
        node_types={"cpu": _type()},
        max_workers=100,
        upscaling_speed=1000.0,
        idle_timeout_seconds=60.0,
        now=1000.0,
        demand=[DemandItem(bundle={"CPU": 4, "GPU": 1}, count=1), DemandItem(bundle=CPU2, count=5)],
        nodes=[gpu],
        retired_resources={"gpu": {"CPU": 8, "GPU": 1}},
        max_surge=1,
    )
    decision = schedule(inp)
    assert decision.drop == ()
    assert decision.infeasible == (DemandItem(bundle={"CPU": 4, "GPU": 1}, count=1),)
    assert decision.launch == {"cpu": 5}  # the gpu node is not being replaced: no surge


def test_limits_do_not_stall_a_replacement() -> None:
    decision = schedule(_input(_old(4), 4, max_workers=2, max_surge=1))
    assert decision.launch == {"cpu": 1}
    decision = schedule(_input(_old(4) + _new(2), 4, max_workers=2, max_surge=1))
    assert len(decision.drop) == 2  # two stay: the config holds no more than two
    assert decision.launch == {}


def test_pacing_does_not_stall_a_replacement() -> None:
    decision = schedule(_input(_old(100), 100, upscaling_speed=0.05, max_surge=25))
    assert decision.launch == {"cpu": 5}


def test_a_retiring_node_of_unknown_resources_stays_while_ready_capacity_is_short() -> None:
    unknown = NodeView("gone-0", "gone", Status.READY, 0.0, retiring=True)
    assert schedule(_input([unknown], 1)).drop == ()
    assert schedule(_input([unknown, *_new(1, Status.PENDING)], 1)).drop == ()
    assert schedule(_input([unknown, *_new(1)], 1)).drop == ("gone-0",)


# ---------------------------------------------------------------- properties

_STATUSES = [
    Status.READY,
    Status.RUNNING,
    Status.PENDING,
    Status.LAUNCHED,
    Status.REQUESTED,
    Status.QUEUED,
]


@st.composite
def _retiring_scenarios(draw: st.DrawFn) -> SchedulingInput:
    """One bundle shape, CPU only, so that what a set of nodes holds is exact."""
    types = {
        name: _type(draw(st.integers(1, 8)), min_workers=draw(st.integers(0, 2)), max_workers=50)
        for name in draw(st.sets(st.sampled_from(["a", "b"]), min_size=1))
    }
    retired = {"gone": {"CPU": float(draw(st.integers(1, 8)))}}
    nodes = [
        NodeView(
            f"n-{i}",
            draw(st.sampled_from([*sorted(types), "gone"])),
            draw(st.sampled_from(_STATUSES)),
            float(i),
            draw(st.none() | st.floats(0, 1000)),
            draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 20)))
    ]
    return SchedulingInput(
        node_types=types,
        max_workers=draw(st.integers(0, 60)),
        upscaling_speed=draw(st.floats(0.5, 10)),
        idle_timeout_seconds=draw(st.floats(0, 600)),
        now=1000.0,
        demand=[
            DemandItem(
                bundle={"CPU": float(draw(st.integers(1, 4)))}, count=draw(st.integers(0, 30))
            )
        ],
        nodes=nodes,
        retired_resources=retired,
        max_surge=draw(st.integers(1, 5)),
    )


def _holds(inp: SchedulingInput, nodes: list[NodeView]) -> int:
    """How many of the demand's bundles ``nodes`` hold at most (one shape: exact)."""
    each = inp.demand[0].bundle["CPU"]
    offers = {**inp.retired_resources, **{n: t.resources for n, t in inp.node_types.items()}}
    return sum(math.floor(offers[n.node_type]["CPU"] / each + 1e-9) for n in nodes)


def _retires(inp: SchedulingInput, n: NodeView) -> bool:
    return n.retiring or n.node_type not in inp.node_types


@settings(max_examples=400, deadline=None)
@given(_retiring_scenarios())
def test_property_a_retiring_node_with_demand_is_never_dropped_while_ready_capacity_is_short(
    inp: SchedulingInput,
) -> None:
    decision = schedule(inp)
    dropped = set(decision.drop)
    assert not dropped & decision.busy
    # A queued node is nothing yet: cancelled, it holds nothing.
    retiring = [n for n in inp.nodes if _retires(inp, n) and n.status is not Status.QUEUED]
    ready = [n for n in inp.nodes if not _retires(inp, n) and n.status is Status.READY]
    short = max(0, inp.demand[0].count - _holds(inp, ready))
    kept = [n for n in retiring if n.node_id not in dropped]
    # What ready capacity of configured types cannot hold stays on retiring nodes (as much
    # of it as they can hold).
    assert _holds(inp, kept) >= min(short, _holds(inp, retiring))
    if short == 0:  # ready replacements hold it all: no retiring node is kept for demand
        assert not decision.busy & {n.node_id for n in retiring}


@settings(max_examples=300, deadline=None)
@given(_retiring_scenarios())
def test_property_launches_are_computed_without_ready_retiring_nodes(inp: SchedulingInput) -> None:
    ready_retiring = [n._replace(status=Status.READY) for n in inp.nodes if _retires(inp, n)]
    staying = [n for n in inp.nodes if not _retires(inp, n)]
    fast = {"upscaling_speed": 1e6, "max_surge": 10**6}
    with_them = SchedulingInput(**{**inp.__dict__, **fast, "nodes": staying + ready_retiring})
    without = SchedulingInput(**{**inp.__dict__, **fast, "nodes": staying})
    assert schedule(with_them).launch == schedule(without).launch


@settings(max_examples=400, deadline=None)
@given(_retiring_scenarios())
def test_property_a_replacement_never_stalls(inp: SchedulingInput) -> None:
    """While retiring nodes hold demand that configured types can take, and no node of a
    configured type is on its way, replacements are launched: whatever the nodes' sizes."""
    staying = [n for n in inp.nodes if not _retires(inp, n)]
    assume(all(n.status is Status.READY for n in staying))
    roomy = SchedulingInput(**{**inp.__dict__, "max_workers": 10**6, "upscaling_speed": 1e6})
    decision = schedule(roomy)
    held = decision.busy & {n.node_id for n in inp.nodes if _retires(inp, n)}
    if held and not decision.infeasible:
        assert decision.launch
