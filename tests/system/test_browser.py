"""The browser demo at /demo: served by the combined face, clicked through in real Chromium.

The browser test drives Debian's chromium (not a downloaded browser) through Playwright,
and takes a screenshot (saved as docs/demo.png for the README when
STATEBRIDGE_UPDATE_SCREENSHOT=1).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.recordings import ROOT
from tests.support.servers import Server

SCREENSHOT = ROOT / "docs" / "demo.png"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(env={}, data_dir=tmp_path_factory.mktemp("browser")).start()
    yield running
    running.stop()


# ---- the route, without a browser ------------------------------------------------------


def test_page_and_assets_are_served(demo_server: Server) -> None:
    page = httpx.get(f"{demo_server.url}/demo")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/demo/app.js"' in page.text
    assert "<script>" not in page.text  # the CSP allows no inline script
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = httpx.get(f"{demo_server.url}/demo/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/api/stateful" in script.text
    style = httpx.get(f"{demo_server.url}/demo/style.css")
    assert style.headers["content-type"].startswith("text/css")


def test_page_is_on_the_combined_face_only(demo_server: Server) -> None:
    for base in (demo_server.stateless_url, demo_server.stateful_url):
        answer = httpx.get(f"{base}/demo")
        assert answer.status_code == 404
        assert answer.json()["message"] == "Endpoint not found"
    for name in ("nope.js", "index.html", "..%2Fapp.py"):
        assert httpx.get(f"{demo_server.url}/demo/{name}").status_code == 404


# ---- the page, in Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def api(server: Server, path: str, session: str | None = None) -> httpx.Response:
    headers = {"Session-ID": session} if session else {}
    return httpx.get(f"{server.url}/api/stateful{path}", headers=headers)


@pytest.mark.browser
def test_click_through_a_session(browser: Any, demo_server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shot = tmp_path / "demo.png"

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and "/api/" not in r.url
            else None
        ),
    )
    page.goto(f"{demo_server.url}/demo")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    instance = httpx.get(f"{demo_server.url}/health").headers["x-instance-id"]

    # stateless: the server-wide count grows, a new random value each click, no memory of us
    for _ in range(7):  # other clients' requests count too: the count is not "yours"
        assert httpx.get(f"{demo_server.url}/info").status_code == 200
    randoms = []
    counts = []
    for clicks in range(1, 4):
        page.click("#sl-send")
        expect(page.locator("#sl-mine")).to_have_text(str(clicks))
        randoms.append(page.inner_text("#sl-random"))
        counts.append(int(page.inner_text("#sl-count")))
    assert len(set(randoms)) == 3
    assert counts == sorted(counts) and len(set(counts)) == 3
    assert counts[-1] >= 10  # seven requests from elsewhere plus our three
    expect(page.locator("#sl-known")).to_contain_text("No")
    expect(page.locator("#sl-known")).to_contain_text("I have no memory of previous requests")
    expect(page.locator("#sl-instance")).to_have_text(instance)
    expect(page.locator("#sl-log li")).to_have_count(3)

    # stateful: a session the server remembers
    expect(page.locator("#sf-session")).to_be_hidden()
    page.select_option("#sf-user", "user001")
    page.click("#sf-begin")
    expect(page.locator("#sf-session")).to_be_visible()
    expect(page.locator("#sf-start")).to_be_hidden()
    expect(page.locator("#sf-expires")).to_have_text(re.compile(r"\d+:\d\d"))
    session_id = page.inner_text("#sf-session-id")
    assert UUID.fullmatch(session_id), session_id
    assert api(demo_server, "/session", session_id).json()["data"]["session"]["userId"] == (
        "user001"
    )
    expect(page.locator("#sf-user-name")).to_contain_text("user001")
    expect(page.locator("#sf-instance")).to_have_text(instance)

    for visits in range(1, 4):
        page.click("#sf-visit")
        expect(page.locator("#sf-visits")).to_have_text(str(visits))
    expect(page.locator("#sf-status")).to_have_text("1. I remember you! This is visit #3")

    page.click("button[data-product=prod001]")
    expect(page.locator("#sf-cart tr[data-product=prod001] .qty")).to_have_text("1")
    page.click("button[data-product=prod001]")
    expect(page.locator("#sf-cart tr[data-product=prod001] .qty")).to_have_text("2")
    page.click("button[data-product=prod002]")
    expect(page.locator("#sf-cart tbody tr")).to_have_count(2)
    expect(page.locator("#sf-total")).to_have_text("79.97")
    cart = api(demo_server, "/cart", session_id).json()["data"]["cart"]
    assert cart["total"] == 79.97
    assert {item["productId"]: item["quantity"] for item in cart["items"]} == {
        "prod001": 2,
        "prod002": 1,
    }

    page.select_option("#sf-theme", "dark")
    page.select_option("#sf-language", "fr")
    page.click("#sf-save-prefs")
    expect(page.locator("#sf-prefs")).to_have_text('{"theme":"dark","language":"fr"}')
    user = httpx.get(f"{demo_server.url}/api/stateless/users/user001").json()["data"]["user"]
    assert user["preferences"] == {"theme": "dark", "language": "fr"}

    countdown = page.inner_text("#sf-expires")
    assert re.fullmatch(r"1[45]:\d\d", countdown), countdown  # 15 idle minutes, sliding
    expect(page.locator("#instances")).to_have_text(instance)

    # the README's picture is refreshed only on request, so test runs leave the tree clean
    target = SCREENSHOT if os.environ.get("STATEBRIDGE_UPDATE_SCREENSHOT") == "1" else shot
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000

    # a reload keeps the session: the page holds only its id, the server holds the rest
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#sf-session-id")).to_have_text(session_id)
    expect(page.locator("#sf-visits")).to_have_text("3")
    expect(page.locator("#sf-total")).to_have_text("79.97")

    page.click("#sf-end")
    expect(page.locator("#sf-session")).to_be_hidden()
    expect(page.locator("#sf-status")).to_contain_text("Session terminated")
    assert api(demo_server, "/session", session_id).status_code == 401

    assert problems == []
    page.close()


@pytest.mark.browser
def test_an_expired_session_is_noticed(browser: Any, demo_server: Server) -> None:
    """The server forgets a session (here: ended elsewhere); the page's next click says so."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{demo_server.url}/demo")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.click("#sf-begin")
    expect(page.locator("#sf-expires")).to_have_text(re.compile(r"\d+:\d\d"))
    session_id = page.inner_text("#sf-session-id")
    ended = httpx.delete(
        f"{demo_server.url}/api/stateful/session", headers={"Session-ID": session_id}
    )
    assert ended.status_code == 200
    page.click("#sf-visit")
    expect(page.locator("#sf-session")).to_be_hidden()
    expect(page.locator("#sf-status")).to_contain_text("Session not found or expired")
    page.close()


@pytest.mark.browser
def test_the_scale_out_section_lists_each_answer(browser: Any, demo_server: Server) -> None:
    """ "Send 6 requests" on one instance: seven rows (the session made, then six reads), all
    answered by it, every read finding the session (behind nginx: test_demo_scale_out_page)."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{demo_server.url}/demo")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    instance = httpx.get(f"{demo_server.url}/health").headers["x-instance-id"]
    page.click("#so-send")
    expect(page.locator("#so-summary")).to_contain_text("only one instance answered")
    rows = page.locator("#so-log tbody tr")
    expect(rows).to_have_count(7)
    assert [rows.nth(i).get_attribute("data-instance") for i in range(7)] == [instance] * 7
    assert [rows.nth(i).get_attribute("data-status") for i in range(7)] == ["200"] * 7
    expect(page.locator("#so-summary")).to_contain_text("Found 6 of 6 times")
    page.close()


@pytest.mark.browser
def test_page_works_on_a_plain_http_host_name(playwright: Any, demo_server: Server) -> None:
    """Served as http://demo.test (not loopback), the page must still load its script."""
    from playwright.sync_api import expect

    rules = f"--host-resolver-rules=MAP demo.test 127.0.0.1:{demo_server.port}"
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
    try:
        page = chromium.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(f"http://demo.test:{demo_server.port}/demo")
        expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=5000)
        assert failed == []
    finally:
        chromium.close()


# ---- /docs, in Chromium ----------------------------------------------------------------


@pytest.mark.browser
def test_swagger_ui_renders_without_a_policy_violation(browser: Any, demo_server: Server) -> None:
    """Swagger UI from the package's own files: the operations are listed, nothing is
    blocked by the page's Content-Security-Policy, nothing is fetched from elsewhere."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed {request.url}"))
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{demo_server.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for route in ("/calculate", "/api/stateful/session", "/api/stateful/cart/add", "/health"):
        assert route in {path.replace("\u200b", "") for path in paths}, route
    assert page.locator(".opblock").count() >= 30
    # the bodies' models are listed by name
    expect(page.locator("section.models")).to_contain_text("CalculateRequest")
    expect(page.locator("section.models")).to_contain_text("CalculationResponse")

    assert problems == []
    assert {url.split("/")[2] for url in requested} == {f"127.0.0.1:{demo_server.port}"}
    page.close()
