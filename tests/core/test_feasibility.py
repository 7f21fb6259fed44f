"""Why demand fits no node type: one line per cause, and an explanation exactly when the
scheduler calls a bundle infeasible."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from steadyscale.config import NodeType
from steadyscale.core.feasibility import Cause, Infeasible, explain_infeasible, why_infeasible
from steadyscale.core.resources import DemandItem, fits
from steadyscale.core.scheduler import SchedulingInput, schedule


def _why(bundle: dict[str, float], types: dict[str, NodeType]) -> tuple[Cause, str | None, str]:
    explained = why_infeasible(bundle, types)
    assert explained is not None
    return explained


def _type(resources: dict[str, float]) -> NodeType:
    return NodeType(
        node_config={"InstanceType": "m5.large", "ImageId": "ami-1"},
        resources=resources,
        max_workers=100,
    )


CPU = _type({"CPU": 16})
GPU = _type({"CPU": 4, "GPU": 1})


def test_a_bundle_some_type_fits_has_no_explanation() -> None:
    assert why_infeasible({"CPU": 4, "GPU": 1}, {"cpu": CPU, "gpu": GPU}) is None
    assert why_infeasible({"CPU": 16, "GPU": 0}, {"cpu": CPU}) is None  # zero asks nothing


def test_a_resource_no_type_offers_is_named() -> None:
    assert why_infeasible({"CPU": 4, "GPU": 1}, {"cpu": CPU}) == (
        Cause.NOT_OFFERED,
        "GPU",
        "no node type offers GPU",
    )
    assert why_infeasible({"GPU": 1, "TPU": 2}, {"cpu": CPU}) == (
        Cause.NOT_OFFERED,
        "GPU",
        "no node type offers GPU or TPU",
    )


def test_too_much_of_a_resource_names_the_largest_offer() -> None:
    assert why_infeasible({"CPU": 64}, {"gpu": GPU, "cpu": CPU}) == (
        Cause.TOO_LARGE,
        "CPU",
        "needs CPU 64, the largest node type offers 16 (cpu)",
    )


def test_a_missing_resource_comes_first_then_each_one_too_large() -> None:
    cause, resource, why = _why({"CPU": 64, "GPU": 2, "TPU": 1}, {"cpu": CPU, "gpu": GPU})
    assert (cause, resource) == (Cause.NOT_OFFERED, "TPU")
    assert why == (
        "no node type offers TPU; needs CPU 64, the largest node type offers 16 (cpu); "
        "needs GPU 2, the largest node type offers 1 (gpu)"
    )


def test_resources_each_offered_but_never_together_say_what_each_type_lacks() -> None:
    assert why_infeasible({"CPU": 8, "GPU": 1}, {"cpu": CPU, "gpu": GPU}) == (
        Cause.NOT_TOGETHER,
        None,
        "no node type offers all of it together (cpu: no GPU; gpu: CPU 4 of 8)",
    )


def test_the_closest_types_are_named_and_the_rest_counted() -> None:
    types = {f"t{i}": _type({"CPU": 8 - i, "GPU": 1 if i == 0 else 0}) for i in range(6)}
    types["big"] = _type({"CPU": 64})
    _, _, why = _why({"CPU": 16, "GPU": 1}, types)
    assert why == (
        "no node type offers all of it together (big: no GPU; t0: CPU 8 of 16; "
        "t1: CPU 7 of 16, no GPU; and 4 more)"
    )


def test_no_node_type_at_all() -> None:
    assert why_infeasible({"CPU": 1}, {}) == (
        Cause.NO_NODE_TYPES,
        None,
        "no node type is configured",
    )


def test_explain_keeps_the_items_that_fit_nothing_and_describes_each() -> None:
    items = [
        DemandItem(bundle={"CPU": 2}, count=3),
        DemandItem(bundle={"CPU": 4, "GPU": 1}, count=4),
        DemandItem(bundle={"GPU": 1}, count=0),
    ]
    [gpu] = explain_infeasible(items, {"cpu": CPU})
    assert gpu == Infeasible(
        bundle={"CPU": 4, "GPU": 1},
        count=4,
        cause=Cause.NOT_OFFERED,
        resource="GPU",
        why="no node type offers GPU",
    )
    assert gpu.describe() == "4 x {CPU: 4, GPU: 1}: no node type offers GPU"


def test_explain_adds_up_the_items_of_one_shape() -> None:
    items = [
        DemandItem(bundle={"GPU": 1}, count=2),
        DemandItem(bundle={"CPU": 64}, count=1),
        DemandItem(bundle={"GPU": 1.0}, count=3),
    ]
    assert [(i.bundle, i.count, i.cause) for i in explain_infeasible(items, {"cpu": CPU})] == [
        ({"GPU": 1}, 5, Cause.NOT_OFFERED),
        ({"CPU": 64}, 1, Cause.TOO_LARGE),
    ]


_RESOURCES = st.sampled_from(["CPU", "GPU", "memory"])
_AMOUNTS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0, 16.0])
_OFFERS = st.dictionaries(_RESOURCES, _AMOUNTS, min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _OFFERS, max_size=3),
    st.lists(_OFFERS, min_size=1, max_size=3),
)
def test_property_explained_exactly_when_no_type_fits_and_as_the_scheduler_decides(
    offers: dict[str, dict[str, float]], bundles: list[dict[str, float]]
) -> None:
    types = {name: _type(resources) for name, resources in offers.items()}
    demand = [DemandItem(bundle=b, count=1) for b in bundles]
    for bundle in bundles:
        explained = why_infeasible(bundle, types) is not None
        assert explained == (not any(fits(bundle, t.resources) for t in types.values()))
    decision = schedule(
        SchedulingInput(
            node_types=types,
            max_workers=100,
            upscaling_speed=100.0,
            idle_timeout_seconds=60.0,
            now=0.0,
            demand=demand,
            nodes=[],
        )
    )
    scheduled = sum(i.count for i in decision.infeasible)
    assert scheduled == sum(i.count for i in explain_infeasible(demand, types))
    assert [i.bundle for i in explain_infeasible(decision.infeasible, types)] == [
        i.bundle for i in decision.infeasible
    ]
