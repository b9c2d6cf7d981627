"""Helpers for the dev-session tests: start a session, follow its events, drive Chromium."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.integration.conftest import Stack

COUNTER = """import { useState } from 'react'
export default function Counter() {
  const [n, setN] = useState(0)
  return <button id="count" onClick={() => setN(n + 1)}>LABEL {n}</button>
}
"""
APP = """import Counter from './Counter'
export default function App() {
  return <main><Counter /></main>
}
"""
CHROMIUM = "/usr/bin/chromium"


def counter(label: str) -> str:
    """The Counter component with its label."""
    return COUNTER.replace("LABEL", label)


def start_session(
    stack: Stack, project: str, files: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Start a session from the react-ts template plus ``files``; wait until it is ready."""
    body = {
        "template": "react-ts",
        "files": files or {"src/App.tsx": APP, "src/Counter.tsx": counter("v0")},
    }
    deadline = time.monotonic() + 30
    with stack.http() as http:
        while True:
            started = http.post(f"/api/v1/projects/{project}/dev", json={**body, **extra})
            if started.status_code != 429 or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # a just-started stack's dev worker has not announced itself yet
        assert started.status_code == 202, started.text
    return wait_status(stack, project, "ready")


def wait_status(stack: Stack, project: str, status: str, timeout: float = 240) -> dict[str, Any]:
    """Poll the session until it has ``status`` (a failed session fails the test)."""
    deadline = time.monotonic() + timeout
    with stack.http() as http:
        while True:
            session = http.get(f"/api/v1/projects/{project}/dev").json()
            if session.get("status") == status:
                return session
            assert session.get("status") != "failed" or status == "failed", session
            assert time.monotonic() < deadline, f"session never {status}: {session}"
            time.sleep(0.2)


def patch(stack: Stack, project: str, files: dict[str, Any]) -> dict[str, Any]:
    """One batch of edits; returns the reply."""
    with stack.http() as http:
        reply = http.patch(f"/api/v1/projects/{project}/dev/files", json={"files": files})
        assert reply.status_code == 200, reply.text
        return reply.json()


class DevEvents:
    """Follows a session's SSE stream in a thread and keeps every event."""

    def __init__(self, stack: Stack, project: str) -> None:
        self.url = f"{stack.url}/api/v1/projects/{project}/dev/events"
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the API may restart under a test
            self._read()

    def _read(self) -> None:
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(30, read=None)) as response:
            name = "message"
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    with self.lock:
                        self.events.append((name, json.loads(line[len("data: ") :])))

    def wait_for(
        self,
        name: str,
        where: Callable[[dict[str, Any]], bool] = lambda _d: True,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """The first event called ``name`` whose data satisfies ``where``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for event, data in self.events:
                    if event == name and where(data):
                        return data
            time.sleep(0.05)
        raise AssertionError(f"no {name} event; saw {self.of_kinds('hmr', 'error', 'status')}")

    def of_kinds(self, *names: str) -> list[tuple[str, dict[str, Any]]]:
        """The events so far with one of these names."""
        with self.lock:
            return [(e, d) for e, d in self.events if e in names]


@contextmanager
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) that resolves every preview host to loopback."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP *.preview.localhost 127.0.0.1"],
        )
        try:
            yield _Browser(chromium)
        finally:
            chromium.close()


class _Browser:
    """Chromium whose pages wait up to two minutes: a session's first page load makes
    Vite optimize the dependencies, which takes long on a loaded machine."""

    def __init__(self, chromium: Any) -> None:
        self.chromium = chromium

    def new_page(self) -> Any:
        page = self.chromium.new_page()
        page.set_default_timeout(120_000)
        return _Page(page)


NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


class _Page:
    """A Playwright page whose ``wait_for_selector`` reloads a load that Chromium itself cut.

    Chromium aborts the requests in flight with ``net::ERR_NETWORK_CHANGED`` whenever a
    network interface appears or goes on its machine, and here Docker adds and removes one
    for every container other builds start. A page whose module fetch was cut that way
    never renders (seen in CI: the session ready, the page blank for two minutes). A
    browser on the person's own machine never sees the builder's interfaces, so the page
    is reloaded, only after that error, and every other failure still fails the test.
    """

    def __init__(self, page: Any) -> None:
        self._page = page
        self.cut = False
        page.on("requestfailed", self._failed)

    def _failed(self, request: Any) -> None:
        if NETWORK_CHANGED in (request.failure or ""):
            self.cut = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._page, name)

    def wait_for_selector(self, selector: str, timeout: float = 120_000, **options: Any) -> Any:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        deadline = time.monotonic() + timeout / 1000
        while True:
            try:
                return self._page.wait_for_selector(selector, timeout=2_000, **options)
            except PlaywrightTimeout:
                if time.monotonic() > deadline:
                    raise
                if self.cut:
                    self.cut = False
                    self._page.reload()


def dev_url(stack: Stack, project: str) -> str:
    """The session's URL."""
    return f"http://dev--{project}.preview.localhost:{stack.port}/"


class HeldViteClient:
    """Holds a page's requests for ``/@vite/client`` (Vite's HMR client, which opens the
    page's socket) until :meth:`release`; requests after that go through at once."""

    def __init__(self, page: Any) -> None:
        self.held: list[Any] = []
        self.released = False
        page.route("**/@vite/client", self._route)

    def _route(self, route: Any) -> None:
        if self.released:
            route.continue_()
        else:
            self.held.append(route)

    def release(self) -> None:
        """Let the held requests (and every later one) through."""
        self.released = True
        for route in self.held:
            route.continue_()
