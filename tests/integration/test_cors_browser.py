"""Browsers on another origin: REST, SSE and the WebSocket from a page in real Chromium.

The API allows exactly one other origin (``KILN_CORS_ORIGINS``); a page there submits a
build (a JSON POST, so Chromium sends a preflight first), follows its events with an
EventSource and over a WebSocket. The same page served from an origin not on the list
can do none of it.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import (
    WRITE_DIST,
    _free_port,
    launch_stack,
    node_project,
    require_services,
)
from tests.integration.live_clients import writer

pytestmark = pytest.mark.integration

PAGE = """<!doctype html><script>
window.run = async (api, files) => {
  const out = {events: [], frames: []};
  try {
    const submit = await fetch(api + "/api/v1/builds", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({files, project: "corsproj", fresh: true})});
    out.submit = submit.status;
    out.id = (await submit.json()).id;
  } catch (e) { out.submitError = String(e); return out; }
  const sse = new Promise((resolve) => {
    const source = new EventSource(api + "/api/v1/builds/" + out.id + "/events");
    for (const name of ["status", "log", "end"]) {
      source.addEventListener(name, (e) => {
        out.events.push([e.lastEventId, name]);
        if (name === "end") { source.close(); resolve(); }
      });
    }
    source.onerror = () => { out.sseError = true; source.close(); resolve(); };
  });
  const ws = new Promise((resolve) => {
    const socket = new WebSocket(api.replace("http", "ws") + "/api/v1/ws");
    socket.onopen = () => socket.send(JSON.stringify({subscribe: {build: out.id}}));
    socket.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      if (frame.id) out.frames.push([frame.id, frame.event]);
      if (frame.event === "end") { socket.close(); resolve(); }
    };
    socket.onclose = (e) => { out.wsClose = e.code; resolve(); };
  });
  window.ready = true;
  await Promise.all([sse, ws]);
  return out;
};
</script>"""


@contextlib.contextmanager
def page_server(root: Path) -> Iterator[int]:
    """A static server for the page, on a port (so an origin) of its own."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(PAGE)
    port = _free_port()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield port
    finally:
        server.shutdown()


def test_a_page_on_an_allowed_origin_submits_and_follows_and_others_cannot(
    tmp_path: Path,
) -> None:
    require_services()
    playwright = pytest.importorskip("playwright.sync_api")
    with page_server(tmp_path / "page") as page_port, page_server(tmp_path / "other") as other:
        allowed = f"http://localhost:{page_port}"
        stack = launch_stack(tmp_path / "var", workers=0, env={"KILN_CORS_ORIGINS": allowed})
        try:
            # Preflight from the allowed origin answers; from another one it does not allow.
            preflight = {"Access-Control-Request-Method": "POST"}
            ok = httpx.options(
                f"{stack.url}/api/v1/builds", headers={"Origin": allowed, **preflight}
            )
            assert ok.status_code == 200
            assert ok.headers["access-control-allow-origin"] == allowed
            bad = httpx.options(
                f"{stack.url}/api/v1/builds",
                headers={"Origin": f"http://localhost:{other}", **preflight},
            )
            assert "access-control-allow-origin" not in bad.headers

            bus = writer(stack.env["KILN_REDIS_URL"], stack.var_dir)
            with playwright.sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox"]
                )
                try:
                    page = browser.new_page()
                    page.goto(f"{allowed}/index.html")
                    page.evaluate(
                        "([api, files]) => { window.result = window.run(api, files); }",
                        [stack.url, node_project(WRITE_DIST)],
                    )
                    page.wait_for_function("window.ready === true", timeout=30_000)
                    page.wait_for_timeout(1000)  # both followers have joined
                    build = stack.client.builds(project="corsproj")[0]["id"]
                    bus.logs(build, "building", "stdout", ["from the test"])
                    bus.publish(build, "end", {"id": build, "project": "corsproj"})
                    out = page.evaluate("window.result")
                    assert out["submit"] == 202 and out["id"] == build
                    assert [name for _, name in out["events"]] == ["status", "log", "end"]
                    assert out["frames"] == out["events"]  # same ids on the WebSocket

                    other_page = browser.new_page()
                    other_page.goto(f"http://localhost:{other}/index.html")
                    refused = other_page.evaluate(
                        "([api, files]) => window.run(api, files)",
                        [stack.url, node_project(WRITE_DIST)],
                    )
                    assert "submitError" in refused  # fetch refused by CORS
                    ws_refused = other_page.evaluate(
                        """(api) => new Promise((resolve) => {
                          const s = new WebSocket(api.replace("http", "ws") + "/api/v1/ws");
                          s.onopen = () => resolve("open");
                          s.onclose = (e) => resolve("closed " + e.code);
                        })""",
                        stack.url,
                    )
                    assert ws_refused.startswith("closed")
                finally:
                    browser.close()
        finally:
            stack.stop()
