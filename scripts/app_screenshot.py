"""The README's picture of the LoRA Land page, taken from a finished `make demo`.

    .venv/bin/python scripts/app_screenshot.py [--runs runs] [--task glue_sst2] [--out PNG]

Starts `llmbench serve` on the demo's base model and adapters and `llmbench app` beside it,
opens the page in Debian's Chromium (Playwright drives it; no browser is downloaded), picks the
task's adapter, fills the first example, runs it, and saves a full-page screenshot once both
answers are in. Both servers are stopped at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BASE = "smollm2-135m"


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def screenshot(app_url: str, task: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from llmbench.tasks.cards import get_card

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(app_url)
        page.select_option("#category", get_card(task).category)
        page.select_option("#adapter", task)
        expect(page.locator("#task-name")).to_have_text(task, timeout=30_000)
        page.locator(".chip").first.click()
        page.click("#run")
        for side in ("adapter", "base"):
            expect(page.locator(f"#status-{side}")).to_contain_text("done in", timeout=120_000)
        out.write_bytes(page.screenshot(full_page=True))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--task", default="glue_sst2")
    parser.add_argument("--out", default="docs/images/app.png")
    args = parser.parse_args()

    from llmbench.serving.launch import free_port, start_server, stop_server

    runs = Path(args.runs).resolve()
    server, url = start_server(
        runs / "models" / BASE, runs / "train", log_path=runs / "serve-screenshot.log"
    )
    port = free_port()
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmbench.cli",
            "app",
            "--endpoint",
            url,
            "--base-model",
            str(runs / "models" / BASE),
            "--adapters",
            str(runs / "train"),
            "--runs",
            str(runs),
            "--port",
            str(port),
        ],
    )
    try:
        app_url = f"http://127.0.0.1:{port}/"
        wait_for(app_url)
        screenshot(app_url, args.task, Path(args.out))
        print(f"screenshot written to {args.out}")
    finally:
        app.terminate()
        app.wait(timeout=30)
        stop_server(server)


if __name__ == "__main__":
    main()
