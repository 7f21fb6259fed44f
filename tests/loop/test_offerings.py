"""The offering book: pools in order of preference, set aside for a TTL, then offered again."""

from __future__ import annotations

from typing import Any

from steadyscale.config import ClusterConfig
from steadyscale.loop.offerings import OfferingBook, Pool, request_pool
from steadyscale.loop.report import Reporter, TickReport
from steadyscale.retries.clock import FakeClock
from steadyscale.store.ledger import LaunchRequest
from tests.cluster import cluster_config

NODE = {"InstanceType": "m5.large", "ImageId": "ami-12345678"}
A, B = "subnet-aaaa", "subnet-bbbb"


def _config(**node_type: Any) -> ClusterConfig:
    return cluster_config(
        provider={"type": "memory", "subnets": [A, B]},
        unavailable_offering_ttl_seconds=180,
        available_node_types={
            "cpu": {"node_config": NODE, "resources": {"CPU": 2}, **node_type},
            "big": {"node_config": {**NODE, "InstanceType": "m5.2xlarge"}, "resources": {"CPU": 8}},
        },
    )


def _book(config: ClusterConfig, clock: FakeClock) -> OfferingBook:
    return OfferingBook(config, clock, Reporter(clock))


def test_spot_pools_come_first_then_on_demand_over_the_same_subnets() -> None:
    book = _book(_config(market="spot", spot_fallback_to_on_demand=True), FakeClock())
    assert book.pools("cpu") == [
        Pool(A, "spot"),
        Pool(B, "spot"),
        Pool(A, "on-demand"),
        Pool(B, "on-demand"),
    ]
    assert book.pools("big") == [Pool(A, "on-demand"), Pool(B, "on-demand")]


def test_a_node_config_with_its_own_subnet_leaves_the_choice_to_ec2() -> None:
    book = _book(_config(node_config={**NODE, "SubnetId": "subnet-own"}), FakeClock())
    assert book.pools("cpu") == [Pool(None, "on-demand")]


def test_a_pool_set_aside_is_skipped_until_its_ttl_has_passed() -> None:
    clock = FakeClock(1000.0)
    book = _book(_config(market="spot", spot_fallback_to_on_demand=True), clock)
    report = TickReport(started_at=clock.now())
    book.set_aside("cpu", Pool(A, "spot"), "InsufficientInstanceCapacity", report)
    assert book.pool("cpu") == Pool(B, "spot")
    book.set_aside("cpu", Pool(B, "spot"), "InsufficientInstanceCapacity", report)
    assert book.pool("cpu") == Pool(A, "on-demand")  # the fallback market
    clock.advance(179.0)
    book.expire(clock.now())
    assert book.pool("cpu") == Pool(A, "on-demand")
    clock.advance(1.0)
    book.expire(clock.now())  # set aside until 1180: offered again from then
    assert book.pool("cpu") == Pool(A, "spot")


def test_a_type_whose_every_pool_is_set_aside_is_unavailable_and_keeps_its_first_pool() -> None:
    clock = FakeClock()
    book = _book(_config(), clock)
    report = TickReport(started_at=0.0)
    book.set_aside("cpu", Pool(A, "on-demand"), "capacity", report)
    assert book.unavailable_types() == frozenset()
    book.set_aside("cpu", Pool(B, "on-demand"), "capacity", report)
    assert book.unavailable_types() == {"cpu"}
    assert book.pool("cpu") == Pool(A, "on-demand")


def test_setting_aside_again_says_so_once_and_extends_the_ttl() -> None:
    clock = FakeClock()
    book = _book(_config(), clock)
    report = TickReport(started_at=0.0)
    book.set_aside("cpu", Pool(A, "on-demand"), "capacity", report)
    clock.advance(100.0)
    book.set_aside("cpu", Pool(A, "on-demand"), "capacity", report)
    assert [e.message for e in report.events] == [
        "cpu on-demand in subnet-aaaa set aside for 180s: capacity"
    ]
    clock.advance(100.0)
    book.expire(clock.now())  # 200 s after the first, 100 s after the second
    assert book.pool("cpu") == Pool(B, "on-demand")


def test_a_type_the_config_no_longer_has_is_left_alone() -> None:
    book = _book(_config(), FakeClock())
    report = TickReport(started_at=0.0)
    book.set_aside("gone", Pool(A, "on-demand"), "capacity", report)
    assert report.events == []


def test_an_interruption_sets_aside_the_spot_pool_its_request_went_to_only() -> None:
    clock = FakeClock()
    spot = LaunchRequest(
        request_id="r-spot",
        node_type="cpu",
        count=1,
        client_token="ss-r-spot",
        status="done",
        created_at=0.0,
        subnet_id=B,
        spec='{"InstanceMarketOptions": {"MarketType": "spot"}}',
    )
    book = OfferingBook(
        _config(market="spot", spot_fallback_to_on_demand=True), clock, Reporter(clock), [spot]
    )
    assert request_pool(spot) == Pool(B, "spot")
    book.remember("r-od", Pool(A, "on-demand"))
    report = TickReport(started_at=0.0)
    book.interrupted("cpu", "r-od", report)  # on-demand is never reclaimed
    book.interrupted("cpu", None, report)  # a node with no request (adopted long ago)
    assert report.events == []
    book.interrupted("cpu", "r-spot", report)
    assert [e.message for e in report.events] == [
        f"cpu spot in {B} set aside for 180s: interrupted"
    ]
    assert book.pool("cpu") == Pool(A, "spot")
