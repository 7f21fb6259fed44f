"""The config-change planner, pure: kept, re-labelled or retiring, from the snapshot the
ledger keeps, the node_config each node was launched with and the node types now."""

from __future__ import annotations

import json
from typing import Any

from steadyscale.config import NodeType
from steadyscale.core.changes import (
    Fate,
    LiveNode,
    NodeFate,
    canonical,
    decode_snapshot,
    definitions,
    encode_snapshot,
    launched_with,
    plan_changes,
    resolve_surge,
)

NODE = {"InstanceType": "m5.large", "ImageId": "ami-1"}


def _type(node_config: dict[str, Any] | None = None, **kwargs: Any) -> NodeType:
    return NodeType(
        node_config=node_config or NODE, resources=kwargs.pop("resources", {"CPU": 2}), **kwargs
    )


def _nodes(node_type: str, n: int, node_config: dict[str, Any] | None = None) -> list[LiveNode]:
    config = None if node_config is None else canonical(node_config)
    return [LiveNode(f"{node_type}-{i}", node_type, config) for i in range(n)]


def test_unchanged_types_keep_their_nodes() -> None:
    types = {"cpu": _type()}
    plan = plan_changes(snapshot=definitions(types), nodes=_nodes("cpu", 3, NODE), node_types=types)
    assert plan.renames == {}
    assert plan.counts() == {Fate.KEPT: 3}


def test_a_renamed_type_with_the_same_node_config_and_resources_is_re_labelled() -> None:
    before = {"cpu": _type()}
    after = {"cpu2": _type(max_workers=20, min_workers=1)}  # bounds are no definition
    plan = plan_changes(
        snapshot=definitions(before), nodes=_nodes("cpu", 6, NODE), node_types=after
    )
    assert plan.renames == {"cpu": "cpu2"}
    assert plan.groups() == [(NodeFate(Fate.RELABELLED, "cpu", "cpu2"), 6)]
    assert plan.retiring == {}
    assert set(plan.snapshot) == {"cpu2"}


def test_a_rename_needs_exactly_one_new_type_with_the_same_definition() -> None:
    before = {"cpu": _type()}
    after = {"a": _type(), "b": _type()}
    plan = plan_changes(
        snapshot=definitions(before), nodes=_nodes("cpu", 2, NODE), node_types=after
    )
    assert plan.renames == {}
    assert plan.retiring == {
        "cpu-0": "node type cpu was removed",
        "cpu-1": "node type cpu was removed",
    }


def test_other_resources_or_node_config_make_no_rename() -> None:
    before = {"cpu": _type()}
    for after in (
        {"cpu2": _type(resources={"CPU": 4})},
        {"cpu2": _type({**NODE, "ImageId": "ami-2"})},
    ):
        plan = plan_changes(snapshot=definitions(before), nodes=_nodes("cpu", 1), node_types=after)
        assert plan.renames == {}
        assert plan.counts() == {Fate.RETIRING: 1}


def test_a_type_the_snapshot_had_is_no_rename_target() -> None:
    before = {"cpu": _type(), "cpu2": _type()}
    after = {"cpu2": _type()}
    plan = plan_changes(snapshot=definitions(before), nodes=_nodes("cpu", 1), node_types=after)
    assert plan.renames == {}
    assert plan.retiring == {"cpu-0": "node type cpu was removed"}


def test_a_changed_node_config_retires_the_nodes_launched_with_the_old_one() -> None:
    before = {"cpu": _type()}
    after = {"cpu": _type({**NODE, "ImageId": "ami-2"})}
    nodes = [*_nodes("cpu", 2, NODE), LiveNode("new", "cpu", canonical(after["cpu"].node_config))]
    plan = plan_changes(snapshot=definitions(before), nodes=nodes, node_types=after)
    assert plan.retiring == {
        "cpu-0": "node type cpu's node_config changed (ImageId)",
        "cpu-1": "node type cpu's node_config changed (ImageId)",
    }
    assert plan.fates["new"].fate is Fate.KEPT


def test_without_what_a_node_was_launched_with_the_snapshot_tells() -> None:
    before = {"cpu": _type()}
    after = {"cpu": _type({**NODE, "ImageId": "ami-2"})}
    plan = plan_changes(snapshot=definitions(before), nodes=_nodes("cpu", 1), node_types=after)
    assert plan.counts() == {Fate.RETIRING: 1}
    plan = plan_changes(snapshot=None, nodes=_nodes("cpu", 1), node_types=after)
    assert plan.counts() == {Fate.KEPT: 1}  # nothing says it changed


def test_a_market_change_keeps_the_nodes() -> None:
    before = {"cpu": _type()}
    after = {"cpu": _type(market="spot")}
    spot = canonical({**NODE})  # the market options are stripped from what was sent
    plan = plan_changes(
        snapshot=definitions(before), nodes=[LiveNode("n", "cpu", spot)], node_types=after
    )
    assert plan.counts() == {Fate.KEPT: 1}


def test_without_a_snapshot_no_rename_is_guessed_and_unknown_types_retire() -> None:
    plan = plan_changes(snapshot=None, nodes=_nodes("cpu", 2, NODE), node_types={"cpu2": _type()})
    assert not plan.had_snapshot
    assert plan.renames == {}
    assert plan.counts() == {Fate.RETIRING: 2}


def test_a_removed_type_stays_in_the_snapshot_while_its_nodes_retire() -> None:
    before = {"cpu": _type(), "gpu": _type(resources={"CPU": 4, "GPU": 1})}
    after = {"cpu": _type()}
    plan = plan_changes(snapshot=definitions(before), nodes=_nodes("gpu", 1), node_types=after)
    assert plan.snapshot["gpu"].resources == {"CPU": 4, "GPU": 1}
    plan = plan_changes(snapshot=definitions(before), nodes=_nodes("cpu", 1), node_types=after)
    assert set(plan.snapshot) == {"cpu"}  # no gpu node left: forgotten


def test_a_re_labelled_node_launched_with_an_older_node_config_still_retires() -> None:
    before = {"cpu": _type({**NODE, "ImageId": "ami-2"})}
    after = {"cpu2": _type({**NODE, "ImageId": "ami-2"})}
    plan = plan_changes(
        snapshot=definitions(before), nodes=_nodes("cpu", 1, NODE), node_types=after
    )
    assert plan.renames == {"cpu": "cpu2"}
    assert plan.fates["cpu-0"] == NodeFate(
        Fate.RETIRING, "cpu", "cpu2", "node type cpu2's node_config changed (ImageId)"
    )


def test_a_retiring_node_offers_what_it_was_launched_with_after_a_restart_too() -> None:
    before = {"cpu": _type()}
    bigger = {**NODE, "InstanceType": "m5.xlarge"}
    after = {"cpu": _type(bigger, resources={"CPU": 4})}
    nodes = [*_nodes("cpu", 2, NODE), LiveNode("new", "cpu", canonical(bigger))]
    plan = plan_changes(snapshot=definitions(before), nodes=nodes, node_types=after)
    # The old nodes offer CPU 2, not the CPU 4 the type offers now; the new one the type's.
    assert plan.offers == {"cpu-0": {"CPU": 2}, "cpu-1": {"CPU": 2}}
    # The ledger keeps it: at the next start the snapshot already has the new definition.
    restarted = decode_snapshot(encode_snapshot(plan.snapshot))
    assert restarted == plan.snapshot
    again = plan_changes(snapshot=restarted, nodes=nodes, node_types=after)
    assert again.offers == plan.offers
    assert again.retiring == plan.retiring
    gone = plan_changes(snapshot=restarted, nodes=nodes[2:], node_types=after)
    assert gone.snapshot == definitions(after)  # none of them left: forgotten


def test_a_retiring_node_whose_type_offers_the_same_has_no_offer_of_its_own() -> None:
    before = {"cpu": _type()}
    after = {"cpu": _type({**NODE, "ImageId": "ami-2"})}
    plan = plan_changes(
        snapshot=definitions(before), nodes=_nodes("cpu", 2, NODE), node_types=after
    )
    assert plan.counts() == {Fate.RETIRING: 2}
    assert plan.offers == {}


def test_the_snapshot_and_a_request_spec_read_back() -> None:
    types = definitions({"cpu": _type(market="spot")})
    assert decode_snapshot(encode_snapshot(types)) == types
    assert decode_snapshot(None) is None
    assert decode_snapshot("not json") is None
    spec = json.dumps({**NODE, "InstanceMarketOptions": {"MarketType": "spot"}}, sort_keys=True)
    assert launched_with(spec) == canonical(NODE)
    assert launched_with(None) is None


def test_max_surge_is_a_number_or_a_share_of_the_retiring_nodes_at_least_one() -> None:
    assert resolve_surge(3, 100) == 3
    assert resolve_surge("25%", 6) == 2
    assert resolve_surge("25%", 1) == 1
    assert resolve_surge("100%", 7) == 7
    assert resolve_surge("10%", 0) == 1
