"""Dev sessions against the real engine, Redis, HTTP, WebSockets and Chromium.

One stack for the module (its dev worker takes up to four sessions); each test uses its
own project, so sessions run side by side as they would for several users.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import websockets

from tests.integration.conftest import Stack, launch_stack, require_services
from tests.integration.dev_helpers import (
    APP,
    DevEvents,
    HeldViteClient,
    browser,
    counter,
    dev_url,
    patch,
    start_session,
    wait_status,
)

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Chromium")


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    # No flush here: the session-wide stack shares this Redis database, and a flush would
    # wipe its worker's registration (each stack has its own queue and instance keys).
    stack = launch_stack(
        tmp_path_factory.mktemp("kiln-dev-var"), env={"KILN_DEV_MAX_SESSIONS": "4"}
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stop_after(dev_stack: Stack) -> Iterator[list[str]]:
    """Projects whose sessions the test leaves to be stopped (the worker has four slots)."""
    projects: list[str] = []
    yield projects
    with dev_stack.http() as http:
        for project in projects:
            http.delete(f"/api/v1/projects/{project}/dev")
    for project in projects:
        deadline = time.monotonic() + 10
        while session_containers(dev_stack, project) and time.monotonic() < deadline:
            time.sleep(0.2)


def session_containers(stack: Stack, project: str) -> list[Any]:
    engine = docker.from_env(timeout=30)
    labels = [f"kiln.instance={stack.instance}", "kiln.dev=1", f"kiln.project={project}"]
    return engine.containers.list(all=True, sparse=True, filters={"label": labels})


def test_an_edit_keeps_react_state_and_the_window(dev_stack: Stack) -> None:
    project = "refresh"
    session = start_session(dev_stack, project)
    assert session["url"] == dev_url(dev_stack, project)
    events = DevEvents(dev_stack, project)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(dev_url(dev_stack, project))
        page.wait_for_selector("#count")
        page.click("#count")
        page.click("#count")
        page.evaluate("window.__kept = 'yes'")
        reply = patch(dev_stack, project, {"src/Counter.tsx": counter("edited")})
        page.wait_for_function("document.querySelector('#count').textContent === 'edited 2'")
        assert page.evaluate("window.__kept") == "yes"  # no reload: the same window
        hmr = events.wait_for("hmr", lambda d: d["revision"] == reply["revision"])
    assert hmr["kind"] == "update"
    assert "/src/Counter.tsx" in hmr["paths"]
    assert 0 < hmr["latency_ms"] < 5000
    assert reply["restart"] is False


def test_an_edit_made_while_a_page_loads_reaches_it(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    """The page has fetched its modules, its HMR client has not connected yet, and an edit
    lands: Vite tells every open socket, which is none. The page must still get the edit."""
    project = "midload"
    stop_after.append(project)
    start_session(dev_stack, project)
    events = DevEvents(dev_stack, project)
    with browser() as chromium:
        page = chromium.new_page()
        client = HeldViteClient(page)
        with page.expect_response(lambda answer: "/src/Counter.tsx" in answer.url):
            page.goto(dev_url(dev_stack, project), wait_until="commit")
        reply = patch(dev_stack, project, {"src/Counter.tsx": counter("edited")})
        time.sleep(2)  # Vite's watcher sees the edit and sends its update to no page
        client.release()
        page.wait_for_function(
            "document.querySelector('#count')?.textContent === 'edited 0'", timeout=30_000
        )
        hmr = events.wait_for("hmr", lambda d: d["revision"] == reply["revision"])
    assert hmr["kind"] == "full-reload"


SLOW_WATCHER_CONFIG = """
import tailwindcss from '@tailwindcss/vite'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// Vite's watcher polls every 3 s: it notices an edit seconds after the edit's write
export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: { watch: { usePolling: true, interval: 3000 } },
})
"""


def test_a_page_served_after_an_edit_gets_the_edited_module(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    """A page loaded after an edit, before Vite's watcher noticed it, must not get the
    edited module's old transform (the watcher's update then reaches no page)."""
    project = "slowwatch"
    stop_after.append(project)
    files = {
        "src/App.tsx": APP,
        "src/Counter.tsx": counter("v0"),
        "vite.config.ts": SLOW_WATCHER_CONFIG,
    }
    start_session(dev_stack, project, files)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(dev_url(dev_stack, project))
        page.wait_for_selector("#count")  # Counter.tsx transformed and cached
        client = HeldViteClient(page)
        patch(dev_stack, project, {"src/Counter.tsx": counter("edited")})
        with page.expect_response(lambda answer: "/src/Counter.tsx" in answer.url):
            page.reload(wait_until="commit")
        time.sleep(4)  # the watcher notices the edit; this page's socket is not open yet
        client.release()
        page.wait_for_function(
            "document.querySelector('#count')?.textContent === 'edited 0'", timeout=30_000
        )


def test_a_second_start_returns_the_running_session(dev_stack: Stack) -> None:
    project = "refresh"  # started by the first test, still running
    with dev_stack.http() as http:
        again = http.post(f"/api/v1/projects/{project}/dev", json={"template": "react-ts"})
    assert again.status_code == 200
    assert again.json()["status"] == "ready"


def test_sessions_survive_an_api_restart(dev_stack: Stack) -> None:
    project = "refresh"
    assert dev_stack.api is not None
    dev_stack.api.terminate()
    dev_stack.api.wait(timeout=15)
    dev_stack.start_api()
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = httpx.get(
                f"{dev_stack.url}/",
                headers={"Host": f"dev--{project}.preview.localhost:{dev_stack.port}"},
            )
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert answer.status_code == 200 and "/__kiln/hook.js" in answer.text
    assert wait_status(dev_stack, project, "ready")["revision"] >= 1


def test_a_batch_of_ten_files_arrives_as_one_update(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    project = "batch"
    stop_after.append(project)
    parts = {
        f"src/Part{i}.tsx": f"export default function Part{i}() {{ return <i>p{i}-v0</i> }}\n"
        for i in range(10)
    }
    imports = "".join(f"import Part{i} from './Part{i}'\n" for i in range(10))
    app = (
        imports
        + "export default function App() { return <main id='parts'>"
        + "".join(f"<Part{i} />" for i in range(10))
        + "</main> }\n"
    )
    start_session(dev_stack, project, {"src/App.tsx": app, **parts})
    events = DevEvents(dev_stack, project)
    with browser() as chromium:
        page = chromium.new_page()
        frames: list[dict[str, Any]] = []
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: (
                    frames.append(json.loads(payload)) if isinstance(payload, str) else None
                ),
            ),
        )
        page.goto(dev_url(dev_stack, project))
        page.wait_for_selector("#parts")
        frames.clear()
        edits = {path: text.replace("-v0", "-v1") for path, text in parts.items()}
        reply = patch(dev_stack, project, edits)
        page.wait_for_function(
            "document.querySelector('#parts').textContent.split('-v1').length === 11"
        )
        events.wait_for("hmr", lambda d: d["revision"] == reply["revision"])
        time.sleep(0.5)  # any straggling update would come now
    updates = [f for f in frames if f.get("type") == "update"]
    assert len(updates) == 1, updates
    touched = {u["path"] for u in updates[0]["updates"]}
    assert {f"/src/Part{i}.tsx" for i in range(10)} <= touched


def test_a_syntax_error_is_reported_and_the_next_good_edit_clears_it(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    project = "syntax"
    stop_after.append(project)
    start_session(dev_stack, project)
    events = DevEvents(dev_stack, project)
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(dev_url(dev_stack, project))
        page.wait_for_selector("#count")
        broken = patch(
            dev_stack,
            project,
            {"src/Counter.tsx": counter("x").replace("return <button", "return <<button")},
        )
        error = events.wait_for("error", lambda d: d["revision"] == broken["revision"])
        assert error["file"] == "src/Counter.tsx"
        assert error["line"] == 4 and isinstance(error["column"], int)
        fixed = patch(dev_stack, project, {"src/Counter.tsx": counter("fixed")})
        page.wait_for_function("document.querySelector('#count').textContent.startsWith('fixed')")
        hmr = events.wait_for("hmr", lambda d: d["revision"] == fixed["revision"])
    assert hmr["kind"] == "update"
    later_errors = [d for e, d in events.of_kinds("error") if d["revision"] >= fixed["revision"]]
    assert later_errors == []


def test_a_dependency_added_mid_session_installs_and_works(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    project = "adddep"
    stop_after.append(project)
    start_session(dev_stack, project)
    events = DevEvents(dev_stack, project)
    with dev_stack.http() as http:
        manifest = json.loads(
            (Path(__file__).resolve().parents[2] / "templates/react-ts/package.json").read_text()
        )
    manifest["dependencies"]["ms"] = "^2.1.3"
    uses_it = (
        "import ms from 'ms'\nexport default function App() { return <p id='ms'>{ms('2h')}</p> }\n"
    )
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(dev_url(dev_stack, project))
        page.wait_for_selector("#count")
        reply = patch(dev_stack, project, {"package.json": json.dumps(manifest, indent=2)})
        assert reply["restart"] is True
        events.wait_for("status", lambda d: d["status"] == "installing")
        events.wait_for(
            "status",
            lambda d: d["status"] == "ready" and d["revision"] >= reply["revision"],
            timeout=300,  # a new lockfile: resolved and installed once through the proxy
        )
        patch(dev_stack, project, {"src/App.tsx": uses_it})
        page.wait_for_selector("#ms", timeout=60_000)  # the page reconnected by itself
        assert page.inner_text("#ms") == "7200000"
    del http


PROBE_CONFIG = """
import net from 'node:net'
import dns from 'node:dns/promises'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

function attempt(host, port) {
  return new Promise((done) => {
    const socket = net.connect({ host, port, timeout: 3000 })
    socket.on('connect', () => { socket.destroy(); done('connected') })
    socket.on('error', (err) => done(err.code || 'error'))
    socket.on('timeout', () => { socket.destroy(); done('timeout') })
  })
}

const probe = {
  name: 'network-probe',
  configureServer(server) {
    const results = Promise.all([
      attempt('1.1.1.1', 443),
      attempt('172.17.0.1', 6379),
      attempt('172.30.213.1', 3128),
      attempt('127.0.0.1', 6379),
      dns.lookup('registry.npmjs.org').then(() => 'resolved', (err) => err.code),
      fetch('https://registry.npmjs.org/').then(
        () => 'fetched',
        (err) => String(err.cause?.code || err),
      ),
    ])
    server.middlewares.use('/__probe', async (_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(await results))
    })
  },
}

// A hostile config: it asks for every interface, any host, another port.
export default defineConfig({
  plugins: [react(), probe],
  server: { host: '0.0.0.0', port: 3000, strictPort: false, allowedHosts: true },
})
"""


def test_the_dev_server_reaches_no_network(dev_stack: Stack, stop_after: list[str]) -> None:
    project = "offline"
    stop_after.append(project)
    start_session(dev_stack, project, {"vite.config.ts": PROBE_CONFIG})
    host = {"Host": f"dev--{project}.preview.localhost:{dev_stack.port}"}
    with dev_stack.http() as http:
        results = http.get("/__probe", headers=host).json()
        assert len(results) == 6
        assert not {"connected", "resolved", "fetched"} & set(results), results
        # Kiln's settings won: Vite answers only its own host, nothing reaches /@fs/ outside.
        assert http.get("/@fs/etc/passwd", headers=host).status_code == 403
        assert http.get("/@fs/workspace/package.json", headers=host).status_code == 200
    (container,) = session_containers(dev_stack, project)
    container.reload()
    config = container.attrs["HostConfig"]
    assert config["NetworkMode"] == "none"
    assert container.attrs["NetworkSettings"]["Networks"] in (
        {},
        {"none": container.attrs["NetworkSettings"]["Networks"].get("none")},
    )
    assert config["ReadonlyRootfs"] is True
    assert config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in config["SecurityOpt"]
    assert container.attrs["Config"]["User"] != "0:0"
    assert config["Memory"] > 0 and config["Memory"] == config["MemorySwap"]


def _hmr_handshake(stack: Stack, project: str, origin: str | None) -> str:
    """Open the session's HMR socket as a page would (with Vite's token from its client)."""
    host = {"Host": f"dev--{project}.preview.localhost:{stack.port}"}
    with stack.http() as http:
        client = http.get("/@vite/client", headers=host).text
    token = re.search(r'const wsToken = "([^"]+)"', client)
    assert token, "Vite's client names no token"

    async def attempt() -> str:
        headers = {"Origin": origin} if origin is not None else {}
        try:
            async with websockets.connect(
                f"ws://dev--{project}.preview.localhost:{stack.port}/__kiln_hmr?token={token[1]}",
                host="127.0.0.1",
                port=stack.port,
                additional_headers=headers,
                subprotocols=[websockets.Subprotocol("vite-hmr")],
                origin=None,
                open_timeout=10,
            ) as socket:
                first = await asyncio.wait_for(socket.recv(), 10)
                return f"open {first}"
        except websockets.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"

    return asyncio.run(attempt())


def test_the_hmr_socket_refuses_a_foreign_or_missing_origin(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    project = "origin"
    stop_after.append(project)
    start_session(dev_stack, project)
    own = f"http://dev--{project}.preview.localhost:{dev_stack.port}"
    assert _hmr_handshake(dev_stack, project, "http://evil.example") == "refused 403"
    assert _hmr_handshake(dev_stack, project, None) == "refused 403"
    assert (
        _hmr_handshake(
            dev_stack, project, f"http://latest--{project}.preview.localhost:{dev_stack.port}"
        )
        == "refused 403"
    )
    # The session's own pages do get Vite's socket.
    assert _hmr_handshake(dev_stack, project, own) == 'open {"type":"connected"}'


def test_one_projects_host_cannot_reach_another_session(
    dev_stack: Stack, stop_after: list[str]
) -> None:
    stop_after += ["alpha", "beta"]
    start_session(dev_stack, "alpha", {"src/App.tsx": APP, "src/Counter.tsx": counter("alpha")})
    start_session(dev_stack, "beta", {"src/App.tsx": APP, "src/Counter.tsx": counter("beta")})
    alpha = f"http://dev--alpha.preview.localhost:{dev_stack.port}"
    # beta's socket does not take alpha's pages
    assert _hmr_handshake(dev_stack, "beta", alpha) == "refused 403"
    with browser() as chromium:
        page = chromium.new_page()
        page.goto(alpha + "/")
        page.wait_for_selector("#count")
        assert page.inner_text("#count").startswith("alpha")
        stolen = page.evaluate(
            """async (url) => {
                try { const r = await fetch(url); return 'read ' + (await r.text()).slice(0, 40) }
                catch (e) { return 'blocked' }
            }""",
            f"http://dev--beta.preview.localhost:{dev_stack.port}/src/Counter.tsx",
        )
        assert stolen == "blocked"
        reported = page.evaluate(
            """async (url) => (await fetch(url, {method: 'POST', mode: 'no-cors',
                body: JSON.stringify({kind: 'error', message: 'forged'})})).type""",
            f"http://dev--beta.preview.localhost:{dev_stack.port}/__kiln/report",
        )
        assert reported == "opaque"
    with dev_stack.http() as http:
        beta_report = http.post(
            "/__kiln/report",
            headers={"Host": f"dev--beta.preview.localhost:{dev_stack.port}", "Origin": alpha},
            json={"kind": "error", "message": "forged"},
        )
        assert beta_report.status_code == 403
    # Each session's container mounts only its own socket folder.
    (container,) = session_containers(dev_stack, "alpha")
    mounts = {m["Destination"]: m["Source"] for m in container.attrs["Mounts"]}
    assert mounts["/run/kiln"].endswith("dev-alpha.run")
    assert not any("dev-beta" in source for source in mounts.values())


def test_delete_stops_within_five_seconds(dev_stack: Stack) -> None:
    project = "deleted"
    start_session(dev_stack, project)
    assert len(session_containers(dev_stack, project)) == 1
    events = DevEvents(dev_stack, project)
    began = time.monotonic()
    with dev_stack.http() as http:
        assert http.delete(f"/api/v1/projects/{project}/dev").status_code == 202
    while session_containers(dev_stack, project):
        assert time.monotonic() - began < 5, "the container outlived DELETE by 5 s"
        time.sleep(0.1)
    events.wait_for("end")
    wait_status(dev_stack, project, "stopped", timeout=10)
    with dev_stack.http() as http:
        gone = http.get("/", headers={"Host": f"dev--{project}.preview.localhost:{dev_stack.port}"})
        assert gone.status_code == 404


def test_an_idle_session_stops_by_itself(dev_stack: Stack) -> None:
    project = "idle"
    start_session(dev_stack, project, idle_timeout_s=3)
    wait_status(dev_stack, project, "stopped", timeout=30)
    deadline = time.monotonic() + 10
    while session_containers(dev_stack, project):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_capacity_answers_429_with_retry_after(dev_stack: Stack, stop_after: list[str]) -> None:
    stop_after.append("refresh")  # may still run from the first tests
    with dev_stack.http() as http:
        for index in range(5):  # the worker has four slots
            answer = http.post(f"/api/v1/projects/fill{index}/dev", json={"template": "react-ts"})
            if answer.status_code != 202:
                break
            stop_after.append(f"fill{index}")
    assert answer.status_code == 429, answer.text
    assert 1 <= len(stop_after) - 1 <= 4
    assert answer.json()["error"]["code"] == "dev_capacity"
    assert int(answer.headers["Retry-After"]) > 0


def test_a_killed_worker_leaves_no_session_container(tmp_path: Path) -> None:
    require_services()
    stack = launch_stack(tmp_path / "var")
    try:
        start_session(stack, "crash")
        assert len(session_containers(stack, "crash")) == 1
        stack.kill_worker(stack.workers[0])
        deadline = time.monotonic() + 20
        while session_containers(stack, "crash"):  # its stdin closed: the agent exits
            assert time.monotonic() < deadline, "the session's container outlived its worker"
            time.sleep(0.2)
        # Another worker sees the session lost and its janitor removes the workspace.
        stack.start_worker()
        failed = wait_status(stack, "crash", "failed", timeout=60)
        assert failed["error"]["code"] == "worker_lost"
        workspace = stack.var_dir / "work" / "dev-crash"
        deadline = time.monotonic() + 60
        while workspace.exists() or (stack.var_dir / "work" / "dev-crash.img").exists():
            assert time.monotonic() < deadline, "the janitor left the session's workspace"
            time.sleep(0.5)
    finally:
        stack.stop()
