"""The live page in a real browser (Debian's Chromium) against real daemons on the memory
backend: it loads, asks for a read token when the server wants one, its numbers
are the API's, and it follows the cluster without a reload, by the event stream or, without
it, by polling."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from steadyscale.store.ledger import Ledger
from steadyscale.store.marks import MarkKind, Marks, NodeMark
from tests.web.conftest import READ_TOKEN, Api


def _with_read_token(page: Page) -> None:
    page.add_init_script(f"sessionStorage.setItem('steadyscale.readToken', '{READ_TOKEN}')")


def test_it_asks_for_a_read_token_and_then_shows_the_cluster(page: Page, guarded: Api) -> None:
    page.goto(guarded.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "token")
    expect(page.locator("#problem")).to_contain_text("asks for a read token")
    page.get_by_label("Read token").fill(READ_TOKEN)
    page.get_by_role("button", name="Use").click()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#cluster-name")).to_have_text("web")
    expect(page.locator("#problem")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('steadyscale.readToken')") == READ_TOKEN


def test_a_wrong_token_is_refused_in_words(page: Page, guarded: Api) -> None:
    page.add_init_script("sessionStorage.setItem('steadyscale.readToken', 'not-a-token')")
    page.goto(guarded.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "token")
    expect(page.locator("#problem")).to_contain_text("refused this token")


def test_new_nodes_appear_without_a_reload(page: Page, guarded: Api) -> None:
    guarded.set_demand(0)
    _with_read_token(page)
    page.goto(guarded.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#nodes-live")).to_have_text("0")
    guarded.set_demand(5)
    expect(page.locator("#demand-total")).to_have_text("5")
    expect(page.locator("#nodes-ready")).to_have_text("5")
    expect(page.locator('#nodes tbody tr[data-status="ready"]')).to_have_count(5)
    expect(page.locator("#status-chart")).to_have_attribute("aria-label", re.compile(r"ready 5$"))
    expect(page.locator('#status-chart path[data-status="ready"]')).to_have_count(1)
    expect(page.locator("#events li[data-kind='node']").first).to_be_visible()


def _settled_at(page: Page, api: Api, nodes: int) -> None:
    """The page open on a cluster settled at ``nodes`` ready nodes, as many as live."""
    api.set_demand(nodes)
    _with_read_token(page)
    page.goto(api.url)
    expect(page.locator("#nodes-ready")).to_have_text(str(nodes))
    expect(page.locator("#nodes-live")).to_have_text(str(nodes))


def test_its_numbers_are_the_apis(page: Page, guarded: Api) -> None:
    _settled_at(page, guarded, 3)
    status = guarded.get("api/v1/status")
    expect(page.locator("#demand-total")).to_have_text(str(status["pending_demand"]))
    expect(page.locator("#cost-per-hour")).to_have_text(f"${status['cost_per_hour']:.2f}")
    for name, count in status["totals"].items():
        chip = page.locator(f'#status-counts li[data-status="{name}"]')
        expect(chip).to_have_attribute("data-count", str(count))
    nodes = guarded.get("api/v1/nodes?finished=true")["nodes"]
    rows = page.locator("#nodes tbody tr")
    expect(rows).to_have_count(min(len(nodes), 60))
    for node in nodes[-3:]:
        row = page.locator(f'#nodes tbody tr[data-node-id="{node["node_id"]}"]')
        expect(row).to_have_attribute("data-status", node["status"])
        expect(row.locator("td").nth(1)).to_have_text(node["instance_id"] or "\N{EN DASH}")


def test_it_shows_what_ec2s_events_said_of_live_nodes(page: Page, guarded: Api) -> None:
    _settled_at(page, guarded, 2)
    expect(page.locator("#ec2-events")).to_have_text("none")
    node = guarded.get("api/v1/nodes")["nodes"][0]
    now = guarded.get("api/v1/status")["generated_at"]
    # What the daemon's event consumer keeps of an interruption warning, in its ledger.
    ledger = Ledger(guarded.ledger)
    marks = Marks(ledger.store)
    try:
        marks.add([NodeMark(node["node_id"], MarkKind.WARNED, now, now + 120, "e-web")])
        card = page.locator("#ec2-events")
        expect(card).to_have_text("1 warned")
        expect(card).to_have_attribute(
            "title", re.compile(rf"^{node['instance_id']} \(warned\): EC2 acts in \d+ s$")
        )
        assert guarded.get("api/v1/status")["events"][0]["node_id"] == node["node_id"]
    finally:
        marks.forget([node["node_id"]])
        ledger.close()
    expect(page.locator("#ec2-events")).to_have_text("none")


def test_without_a_token_or_an_event_stream_it_reads_and_polls(
    page: Page, open_daemon: Api
) -> None:
    page.route("**/api/v1/events*", lambda route: route.abort())
    page.goto(open_daemon.url)
    expect(page.locator("#connection")).to_have_attribute("data-state", "polling")
    expect(page.locator("#cluster-name")).to_have_text("web")
    expect(page.locator("#nodes-live")).to_have_text("0")
