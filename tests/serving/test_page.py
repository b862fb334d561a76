"""The web page in headless Chromium (Debian's chromium driven by Playwright): pick a user, see the
history and recommendations, ask why, type liked items, add an item."""
from __future__ import annotations

import shutil

import pytest

from tests.serving.conftest import API_KEY

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def page(store, serve):
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    server = serve(store.root)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto(server.url + "/")
        yield tab
        browser.close()


def test_user_recommendations_and_explanation(page):
    page.wait_for_function("document.getElementById('health').textContent.includes('version v0001')")
    page.fill("#user", "u00")
    page.click("#show-user")
    page.wait_for_selector("#recs tbody tr")
    first = page.locator("#recs tbody tr").first
    assert first.locator("td").nth(1).inner_text() == "3" and first.locator("td").nth(2).inner_text() == "grape"
    assert page.locator("#history tbody tr").count() == 3
    first.locator("button").click()
    page.wait_for_selector(".why")
    assert "history:" in page.inner_text(".why") and "title" in page.inner_text(".why")


def test_new_user_unknown_user_and_add_item(page):
    page.fill("#liked", "4, 5, 6")
    page.fill("#k", "1")
    page.click("#show-new")
    page.wait_for_selector("#recs tbody tr")
    assert page.locator("#recs tbody tr td").nth(1).inner_text() == "7"
    page.fill("#user", "nobody")
    page.click("#show-user")
    page.wait_for_function("document.getElementById('error').textContent.includes('unknown user')")
    page.fill("#new-id", "mango-1")
    page.fill("#new-title", "mango")
    page.fill("#api-key", API_KEY)
    page.click("#add-item")
    page.wait_for_function("document.getElementById('add-result').textContent.includes('added: mango-1')")
    page.fill("#user", "u00")
    page.fill("#k", "3")
    page.click("#show-user")
    page.wait_for_function("document.querySelector('#recs tbody').textContent.includes('mango')")
