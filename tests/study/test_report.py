"""The HTML report in headless Chromium: tables and plots render, nothing is fetched."""
from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_the_report_renders_its_tables_and_plots(study_out):
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto((study_out / "index.html").as_uri())
        assert page.locator("h2").count() == 5  # four sections and the training runs
        assert page.locator("table").count() >= 9
        assert page.locator("table").first.locator("tbody tr").count() == 3
        images = page.locator("figure img")
        assert images.count() == 5
        for i in range(images.count()):
            width = images.nth(i).evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width > 100, f"plot {i} did not render"
        browser.close()
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
