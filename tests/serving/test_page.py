"""The web page in headless Chromium (Debian's chromium driven by Playwright): pick a user, see the
history and recommendations, ask why, type liked items, add an item; the API reference page; both
with nothing loaded from another server and nothing blocked by their Content-Security-Policy."""
from __future__ import annotations

import shutil

import pytest

from tests.serving.conftest import API_KEY, Server, new_store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


# waits use selectors, never wait_for_function: the pages' Content-Security-Policy forbids the eval it needs
@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """One server for the module's pages (a test that adds an item adds one nobody else looks for)."""
    running = Server(new_store(tiny_model, tmp_path_factory.mktemp("page") / "models").root)
    yield running
    running.stop()


@pytest.fixture
def page(server):
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto(server.url + "/")
        yield tab
        browser.close()


def test_user_recommendations_and_explanation(page):
    page.wait_for_selector("#health:has-text('version v0001')")
    page.fill("#user", "u00")
    page.click("#show-user")
    page.wait_for_selector("#recs tbody tr")
    first = page.locator("#recs tbody tr").first
    assert first.locator("td").nth(1).inner_text() == "3" and first.locator("td").nth(2).inner_text() == "grape"
    assert page.locator("#history tbody tr").count() == 3
    first.locator("button").click()
    page.wait_for_selector(".why")
    why = page.inner_text(".why")
    assert "because of the history" in why and "title" in why
    assert any(t in why for t in ("apple (0)", "banana (1)", "cherry (2)")), "history items by title"
    assert page.locator(".why .bar").count() >= 2, "shares drawn as bars"


def test_find_liked_items_by_title(page):
    page.fill("#find", "WRENCH")
    page.click("#find-go")
    page.wait_for_selector("#found tbody tr")
    assert page.locator("#found tbody tr").count() == 1
    page.locator("#found tbody tr button").click()
    page.fill("#find", "r")  # hammer, wrench, screwdriver, pliers, cherry, grape: a title-prefix match first
    page.click("#find-go")
    page.wait_for_selector("#found tbody tr >> nth=5")
    assert page.input_value("#liked") == "5"
    assert "wrench" in page.inner_text("#history")
    page.fill("#k", "3")
    page.click("#show-new")
    page.wait_for_selector("#recs tbody tr")
    assert page.locator("#recs tbody tr").count() == 3
    assert "wrench" in page.inner_text("#history"), "the liked item keeps its title"


def test_new_user_unknown_user_and_add_item(page):
    page.fill("#liked", "4, 5, 6")
    page.fill("#k", "1")
    page.click("#show-new")
    page.wait_for_selector("#recs tbody tr")
    assert page.locator("#recs tbody tr td").nth(1).inner_text() == "7"
    page.fill("#user", "nobody")
    page.click("#show-user")
    page.wait_for_selector("#error:has-text('unknown user')")
    page.fill("#new-id", "mango-1")
    page.fill("#new-title", "mango")
    page.fill("#api-key", API_KEY)
    page.click("#add-item")
    page.wait_for_selector("#add-result:has-text('added: mango-1')")
    page.fill("#user", "u00")
    page.fill("#k", "3")
    page.click("#show-user")
    page.wait_for_selector("#recs tbody:has-text('mango')")


def test_pages_work_offline_under_their_content_security_policy(page):
    origin = page.url.rstrip("/")
    requests: list[str] = []
    console: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(origin + "/")
    page.wait_for_selector("#health:has-text('version v0001')")
    page.goto(origin + "/docs")
    page.wait_for_selector("text=POST /recommendations")
    assert page.locator("section.route").count() >= 10
    health = page.locator("section.route", has_text="GET /health")
    health.locator("button").click()
    health.locator("pre", has_text="200 OK").wait_for()
    assert requests and all(url.startswith(origin) for url in requests), [u for u in requests if not u.startswith(origin)]
    assert not console, console
