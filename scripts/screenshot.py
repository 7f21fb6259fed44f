"""The page's screenshot in docs/: a real `steadyscale run` of the quick start's cluster on
the embedded emulator, Debian's Chromium (headless, through Playwright) on its page, taken
once the demand has fallen and the scale-down is under way, so every part of the page has
something to show. The scenario is the quick start's, its demand falling to a third at
`--fall-at` (emulated seconds) instead of to nothing.

    .venv/bin/python scripts/screenshot.py [--config CONFIG] [--out docs/web-page.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml
from playwright.sync_api import expect, sync_playwright

from steadyscale.testing.api_daemon import ApiDaemon

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "web-page.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--fall-at", type=float, default=80.0)
    args = parser.parse_args(argv)
    data = yaml.safe_load(args.config.read_text())
    first = data["scenario"][0]["demand"]
    rest = [{**entry, "count": entry["count"] // 3} for entry in first]
    data["scenario"] = [
        {"at_seconds": 0, "demand": first},
        {"at_seconds": args.fall_at, "demand": rest},
        {"at_seconds": args.fall_at + 600, "demand": []},
    ]
    fallen = sum(entry["count"] for entry in rest)
    with tempfile.TemporaryDirectory() as tmp:
        # (Beside a copy, so the run's ledger goes there, not beside the example.)
        config = Path(tmp) / args.config.name
        config.write_text(yaml.safe_dump(data, sort_keys=False))
        with ApiDaemon(config) as daemon, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            expect.set_options(timeout=120_000)
            page.goto(daemon.url)
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            expect(page.locator("#demand-total")).to_have_text(str(fallen))
            expect(page.locator('#nodes tbody tr[data-status="terminated"]')).not_to_have_count(0)
            expect(page.locator("#nodes-live")).to_have_text(
                page.locator("#nodes-ready").inner_text()
            )
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
