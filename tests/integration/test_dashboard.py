"""The dashboard in a real browser (Playwright driving Debian's Chromium) against a real stack.

Screenshots of each page go to ``var/screenshots/`` (or ``KILN_SCREENSHOT_DIR``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.settings import REPO_ROOT
from tests.integration.conftest import WRITE_DIST, Stack, node_project, start_stack

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("KILN_SCREENSHOT_DIR", REPO_ROOT / "var" / "screenshots"))


def _require_dashboard() -> None:
    if (REPO_ROOT / "dashboard" / "dist" / "index.html").is_file() and Path(CHROMIUM).exists():
        return
    missing = "the built dashboard (./scripts/up builds it) or /usr/bin/chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(f"dashboard browser tests need {missing}")
    pytest.skip(f"needs {missing}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (its own browser download fails here).

    Module-scoped and closed at the module's end: sync Playwright runs an event loop in
    this thread while it is open, and later tests call ``asyncio.run``."""
    _require_dashboard()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def slow_lines(count: int, pause_ms: int) -> str:
    """A build script that prints ``count`` numbered lines, ``pause_ms`` apart, then a dist/."""
    return (
        f"let i = 0; const t = setInterval(() => {{ console.log('step ' + (++i));"
        f" if (i >= {count}) {{ clearInterval(t); {WRITE_DIST} }} }}, {pause_ms});"
    )


def wait_status(stack: Stack, build_id: str, statuses: set[str], seconds: float = 300) -> dict:
    """Wait for one of ``statuses``; a build that ends otherwise fails the test at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = stack.client.build(build_id)
        if body["status"] in statuses:
            return body
        assert body["status"] in ("queued", "running"), body
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} never reached {statuses}")


def test_a_submitted_build_appears_on_the_open_project_page_and_its_log_streams(
    stack: Stack, page: Any
) -> None:
    first = stack.client.submit_files(node_project(WRITE_DIST), project="dash-live", fresh=True)
    wait_status(stack, first["id"], {"succeeded"})
    page.goto(f"{stack.url}/projects/dash-live")
    page.wait_for_selector(f"tr[data-build='{first['id']}']")
    page.wait_for_timeout(500)  # the live feed is open

    second = stack.client.submit_files(
        node_project(slow_lines(40, 150)), project="dash-live", fresh=True
    )
    submitted = time.monotonic()
    page.wait_for_selector(f"tr[data-build='{second['id']}']", timeout=5000)
    appeared = time.monotonic() - submitted
    assert appeared < 1.5, f"the new build appeared after {appeared:.2f} s"  # no reload needed
    page.wait_for_selector(f"tr[data-build='{second['id']}'] [data-status='running']")
    shot(page, "project")

    page.click(f"tr[data-build='{second['id']}'] a")
    log = page.locator(".log")
    log.wait_for()
    seen = []
    for _ in range(30):
        seen.append(int(log.get_attribute("data-lines") or 0))
        if stack.client.build(second["id"])["status"] != "running":
            break
        page.wait_for_timeout(200)
    assert len(set(seen)) >= 3, f"log lines did not arrive while the build ran: {seen}"
    page.wait_for_selector("section.build[data-status='succeeded']", timeout=60_000)
    assert page.locator(".log-line", has_text="step 40").count() == 1
    assert page.locator(".log-line.kiln").count() > 0  # Kiln's own lines are set apart


def test_a_failed_build_shows_its_diagnosis_with_file_and_line(stack: Stack, page: Any) -> None:
    broken = "export default function App() {\n  return (\n    <main>\n    </div>\n  );\n}\n"
    build = stack.client.submit_files(
        {"src/App.jsx": broken}, template="react", project="dash-broken", fresh=True
    )
    wait_status(stack, build["id"], {"failed"})
    page.goto(f"{stack.url}/builds/{build['id']}")
    location = page.locator(".diagnosis .location").first
    location.wait_for()
    assert location.inner_text().startswith("src/App.jsx:4")
    shot(page, "build-failed")


def test_the_preview_iframe_renders_the_app(stack: Stack, page: Any) -> None:
    build = stack.client.submit_files({}, template="react-ts", project="dash-preview")
    wait_status(stack, build["id"], {"succeeded"})
    page.goto(f"{stack.url}/builds/{build['id']}")
    frame = page.frame_locator("iframe.preview")
    frame.locator("text=Kiln react-ts template").wait_for(timeout=15_000)
    assert page.locator("a", has_text="Open alone").get_attribute("href").startswith("http://")
    shot(page, "build-succeeded")


def test_cancel_from_the_page_stops_a_running_build(stack: Stack, page: Any) -> None:
    build = stack.client.submit_files(
        node_project(slow_lines(600, 100)), project="dash-cancel", fresh=True
    )
    wait_status(stack, build["id"], {"running"})
    page.goto(f"{stack.url}/builds/{build['id']}")
    page.locator("button", has_text="Cancel").click()
    ended = wait_status(stack, build["id"], {"cancelled", "failed", "succeeded"}, seconds=30)
    assert ended["status"] == "cancelled"
    page.wait_for_selector("section.build[data-status='cancelled']")


def test_retry_from_the_page_makes_a_new_build(stack: Stack, page: Any) -> None:
    build = stack.client.submit_files(node_project(WRITE_DIST), project="dash-retry", fresh=True)
    wait_status(stack, build["id"], {"succeeded"})
    page.goto(f"{stack.url}/builds/{build['id']}")
    page.locator("button", has_text="Retry").click()
    page.wait_for_url(lambda url: "/builds/" in url and build["id"] not in url)
    new_id = page.url.rsplit("/", 1)[-1]
    assert stack.client.build(new_id)["project"] == "dash-retry"


def test_a_100000_line_log_stays_responsive(stack: Stack, page: Any) -> None:
    flood = (
        "const out = []; for (let i = 1; i <= 100000; i++) out.push('flood line ' + i);"
        f" console.log(out.join('\\n')); {WRITE_DIST}"
    )
    build = stack.client.submit_files(node_project(flood), project="dash-flood", fresh=True)
    wait_status(stack, build["id"], {"succeeded"})
    page.goto(f"{stack.url}/builds/{build['id']}")
    log = page.locator(".log")
    log.wait_for()
    deadline = time.monotonic() + 60
    while int(log.get_attribute("data-lines") or 0) < 100_000 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert int(log.get_attribute("data-lines") or 0) >= 100_000
    # Virtualised: only what is on screen is in the DOM.
    assert page.locator(".log-line").count() < 500
    started = time.monotonic()
    log.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    page.locator(".log-line", has_text="flood line 100000").wait_for(timeout=5000)
    log.evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    page.locator(".log-line", has_text="flood line 5").first.wait_for(timeout=5000)
    responsive = time.monotonic() - started
    assert responsive < 5, f"scrolling a 100,000-line log took {responsive:.1f} s"
    shot(page, "build-100k-lines")


def test_projects_and_operations_pages(stack: Stack, page: Any) -> None:
    build = stack.client.submit_files(node_project(WRITE_DIST), project="dash-overview")
    wait_status(stack, build["id"], {"succeeded"})
    page.goto(stack.url + "/")
    card = page.locator("article[data-project='dash-overview']")
    card.wait_for()
    assert card.locator("a", has_text="latest--dash-overview").count() == 1
    shot(page, "projects")
    page.goto(stack.url + "/ops")
    page.locator("h2", has_text="Workers").wait_for()
    assert page.locator("td.mono").count() >= 1  # the stack's worker
    shot(page, "operations")
    page.goto(stack.url + "/new")
    page.locator("input[value='react-ts']").wait_for()
    shot(page, "new-build")


def test_the_dashboard_and_api_want_the_token_when_it_is_set(tmp_path: Path, browser: Any) -> None:
    with start_stack(tmp_path / "var", extra_env={"KILN_API_TOKEN": "s3cret-token"}) as guarded:
        assert httpx.get(f"{guarded.url}/api/v1/builds").status_code == 401
        assert httpx.get(f"{guarded.url}/healthz").status_code == 200
        headers = {"Authorization": "Bearer s3cret-token"}
        assert httpx.get(f"{guarded.url}/api/v1/builds", headers=headers).status_code == 200
        context = browser.new_context()
        page = context.new_page()
        page.goto(guarded.url + "/")
        page.locator("input[name='token']").fill("s3cret-token")
        page.locator("button", has_text="Use token").click()
        page.locator("text=No builds yet.").wait_for()
        assert page.locator("input[name='token']").count() == 0
        context.close()
