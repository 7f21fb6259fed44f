"""The web page's browser: Debian's Chromium, headless, driven by Playwright (never
Playwright's own browser download), one per test session, a fresh context per test; and
real daemons (``steadyscale run`` on the memory backend, time scaled down) serving the API
the page reads."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from steadyscale.config.loading import ledger_path, load_config
from steadyscale.testing.api_daemon import ApiDaemon

CHROMIUM = "/usr/bin/chromium"
WRITE_TOKEN = "web-test-write-token-0123456789"
READ_TOKEN = "web-test-read-token-0123456789"


def cluster_config(directory: Path, provider: str = "emulator", **overrides: Any) -> Path:
    """A small cluster on the embedded emulator (or the memory backend: EC2's same model
    in-process, a daemon that starts in a third of the time), its EC2 delays 20 times
    shorter."""
    data: dict[str, Any] = {
        "cluster_name": "web",
        "max_workers": 40,
        "upscaling_speed": 100,
        "idle_timeout_minutes": 0.2,
        "loop_interval_seconds": 2,
        "provider": {
            "type": provider,
            "emulator": {"profile": "realistic", "seed": 5, "time_scale": 0.05},
        },
        "available_node_types": {
            "cpu": {
                "node_config": {"InstanceType": "m5.large", "ImageId": "ami-12345678"},
                "resources": {"CPU": 2},
                "max_workers": 40,
            }
        },
    }
    data.update(overrides)
    path = directory / "cluster.yaml"
    path.write_text(json.dumps(data))
    return path


class Api:
    """The daemon's API as a test drives it (httpx, the write token)."""

    def __init__(self, daemon: ApiDaemon, token: str | None) -> None:
        self.url = daemon.url
        self.ledger = ledger_path(load_config(daemon.config), daemon.config)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=daemon.url, headers=headers, timeout=10)

    def get(self, path: str) -> Any:
        answer = self.http.get(path)
        answer.raise_for_status()
        return answer.json()

    def set_demand(self, cpu_bundles: int) -> None:
        body = {"demand": [{"bundle": {"CPU": 2}, "count": cpu_bundles}]}
        self.http.put("api/v1/demand", json=body).raise_for_status()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it)")
    # (A condition a test waits for may take a few of the daemon's ticks.)
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (its own session storage); fails the test on any script
    error of the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


@pytest.fixture(scope="session")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Api]]:
    """Two daemons, started and stopped side by side (each takes seconds): one with a
    read-write and a read-only token (every request needs one), one with no token at all
    (anyone on this machine may read)."""
    env = {"STEADYSCALE_API_TOKEN": WRITE_TOKEN, "STEADYSCALE_API_READ_TOKEN": READ_TOKEN}
    guarded = ApiDaemon(cluster_config(tmp_path_factory.mktemp("guarded"), "memory"), env=env)
    unguarded = ApiDaemon(cluster_config(tmp_path_factory.mktemp("open"), "memory"))
    try:
        for daemon in (guarded.launch(), unguarded.launch()):
            daemon.serving()
        yield Api(guarded, WRITE_TOKEN), Api(unguarded, None)
    finally:
        guarded.terminate()
        unguarded.stop()
        guarded.stop()


@pytest.fixture
def guarded(daemons: tuple[Api, Api]) -> Api:
    return daemons[0]


@pytest.fixture
def open_daemon(daemons: tuple[Api, Api]) -> Api:
    return daemons[1]
