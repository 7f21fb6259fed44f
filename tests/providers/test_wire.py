"""The EC2 wire rules every backend and the Ray provider share."""

from __future__ import annotations

from typing import Any

from steadyscale.core.instances import TAG_CLUSTER, TAG_NODE_TYPE, TAG_REQUEST
from steadyscale.providers.protocol import LaunchSpec
from steadyscale.providers.wire import (
    instance_tags,
    market_of,
    merge_tags,
    run_instances_params,
    with_market,
)


def _tags(spec: dict[str, Any]) -> dict[str, str]:
    pairs = spec["Tags"]
    assert isinstance(pairs, list)
    return {t["Key"]: t["Value"] for t in pairs}


def test_our_ownership_tags_win_and_a_name_the_caller_chose_is_kept() -> None:
    user: list[dict[str, Any]] = [
        {
            "ResourceType": "instance",
            "Tags": [
                {"Key": TAG_CLUSTER, "Value": "forged"},
                {"Key": "Name", "Value": "mine"},
                {"Key": "team", "Value": "a"},
            ],
        }
    ]
    params = run_instances_params(
        LaunchSpec(
            request_id="r-1",
            client_token="ss-r-1",
            node_type="cpu",
            count=3,
            node_config={"InstanceType": "m5.large", "TagSpecifications": user},
            subnet_id="subnet-1",
        ),
        "c1",
    )
    assert params["MinCount"] == 1 and params["MaxCount"] == 3
    assert params["ClientToken"] == "ss-r-1" and params["SubnetId"] == "subnet-1"
    assert instance_tags(params) == {
        "Name": "mine",
        "team": "a",
        TAG_CLUSTER: "c1",
        TAG_NODE_TYPE: "cpu",
        TAG_REQUEST: "r-1",
    }
    volume = next(s for s in params["TagSpecifications"] if s["ResourceType"] == "volume")
    assert _tags(volume)["Name"] == "c1-cpu" and _tags(volume)[TAG_CLUSTER] == "c1"
    assert user[0]["Tags"][0]["Value"] == "forged"  # the caller's specs are not modified


def test_with_their_precedence_the_callers_values_win_and_a_new_spec_goes_first() -> None:
    user: list[dict[str, Any]] = [
        {"ResourceType": "volume", "Tags": []},
        {"ResourceType": "instance", "Tags": [{"Key": "ray-node-type", "Value": "mine"}]},
    ]
    merged = merge_tags(
        user,
        {"ray-node-type": "worker", "ray-cluster-name": "c1"},
        resource_types=("instance",),
        precedence="theirs",
    )
    assert _tags(merged[1]) == {"ray-node-type": "mine", "ray-cluster-name": "c1"}
    fresh = merge_tags(
        user[:1],
        {"k": "v"},
        resource_types=("instance",),
        precedence="theirs",
        new_specs_first=True,
    )
    assert fresh[0] == {"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}


def test_the_market_is_spot_only_when_asked_for() -> None:
    assert market_of({"InstanceMarketOptions": {"MarketType": "spot"}}) == "spot"
    assert market_of({"InstanceMarketOptions": {"MarketType": "capacity-block"}}) == "on-demand"
    assert market_of({}) == "on-demand" and market_of(None) == "on-demand"


def test_a_launch_first_sent_under_a_former_cluster_name_is_tagged_with_it() -> None:
    """A resend after a carry-over repeats its first attempt's tags (EC2 refuses a
    ClientToken repeated with other parameters); new launches carry the cluster's name."""
    spec = LaunchSpec(
        request_id="r-1",
        client_token="ss-r-1",
        node_type="cpu",
        count=1,
        node_config={"InstanceType": "m5.large"},
        cluster_name="old",
    )
    for kept in run_instances_params(spec, "new")["TagSpecifications"]:
        assert _tags(kept)[TAG_CLUSTER] == "old" and _tags(kept)["Name"] == "old-cpu"
    fresh = run_instances_params(
        LaunchSpec("r-2", "ss-r-2", "cpu", 1, {"InstanceType": "m5.large"}), "new"
    )
    assert instance_tags(fresh)[TAG_CLUSTER] == "new"


def test_the_market_a_launch_asks_for_is_the_market_read_back() -> None:
    node_config = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
    spot = with_market(node_config, "spot")
    assert spot["InstanceMarketOptions"] == {"MarketType": "spot"} and market_of(spot) == "spot"
    on_demand = with_market(node_config, "on-demand")
    assert on_demand == node_config and market_of(on_demand) == "on-demand"
    assert "InstanceMarketOptions" not in node_config  # the node type's mapping is not changed
