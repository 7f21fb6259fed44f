"""The live page in a real browser against a running autoscaler and its API: it loads, its
numbers are the API's, and it follows the cluster without a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.web.harness import LiveCluster, live_cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LiveCluster]:
    yield from live_cluster(tmp_path)


def _api(cluster: LiveCluster, path: str) -> Any:
    return httpx.get(cluster.url + path.lstrip("/"), timeout=5).json()


def test_the_page_loads_and_shows_the_cluster(page: Page, cluster: LiveCluster) -> None:
    page.goto(cluster.url)
    expect(page).to_have_title("steadyscale · web")
    expect(page.locator("#cluster-name")).to_have_text("web")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#problem")).to_be_hidden()


def test_new_nodes_appear_without_a_reload(page: Page, cluster: LiveCluster) -> None:
    page.goto(cluster.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#nodes tbody tr")).to_have_count(0)
    cluster.set_demand(6)
    expect(page.locator("#demand-total")).to_have_text("6")
    expect(page.locator("#nodes tbody tr")).to_have_count(6)
    expect(page.locator("#nodes-ready")).to_have_text("6", timeout=30_000)
    expect(page.locator('#nodes tbody tr[data-status="ready"]')).to_have_count(6)
    expect(page.locator("#events li").first).to_be_visible()


def test_its_numbers_are_the_apis(page: Page, cluster: LiveCluster) -> None:
    cluster.set_demand(4)
    page.goto(cluster.url)
    expect(page.locator("#nodes-ready")).to_have_text("4", timeout=30_000)
    status = _api(cluster, "/api/v1/status")
    nodes = _api(cluster, "/api/v1/nodes")
    # (Nothing moves once all four are ready and the demand stands still.)
    assert page.locator("#demand-total").inner_text() == str(status["pending_demand"])
    for name, count in status["totals"].items():
        chip = page.locator(f'#status-counts li[data-status="{name}"]')
        assert chip.get_attribute("data-count") == str(count)
    rows = page.locator("#nodes tbody tr")
    expect(rows).to_have_count(len(nodes))
    shown = {rows.nth(i).get_attribute("data-node-id") for i in range(len(nodes))}
    assert shown == {n["node_id"] for n in nodes}


def test_without_the_event_stream_it_polls(page: Page, cluster: LiveCluster) -> None:
    page.route("**/api/v1/events*", lambda route: route.abort())
    page.goto(cluster.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling")
    cluster.set_demand(2)
    expect(page.locator("#nodes-ready")).to_have_text("2", timeout=30_000)
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
