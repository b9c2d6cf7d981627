"""Dev sessions run the build environment a build of their files would: the Node that
``.nvmrc`` asks for and the package manager of the lockfile, read back from the dev
server itself (``projects/dev-pnpm``: its vite.config defines the Node it runs on and
whether ``node_modules/.pnpm`` exists; its page shows both), the shared dependency layer
of its lockfile, and the app's folder a start names (``root``), through the real engine,
Redis, HTTP and Chromium.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, launch_stack, require_services
from tests.integration.dev_helpers import (
    APP,
    DevEvents,
    browser,
    counter,
    dev_url,
    patch,
    start_session,
    wait_status,
)

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Chromium")
PROJECT = Path(__file__).parent / "projects" / "dev-pnpm"
PNPM = "pnpm@10.34.9"  # the image's pin (sandbox/image/toolchains.py)
VITE = {"vite": "^7.1.0"}
TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "react-ts"


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    # No flush: the session-wide stack shares this Redis database (see test_dev_sessions).
    stack = launch_stack(tmp_path_factory.mktemp("kiln-devenv-var"))
    try:
        yield stack
    finally:
        stack.stop()


def shown(page: object) -> dict[str, str]:
    text = page.inner_text("p")  # type: ignore[attr-defined]
    return dict(part.split("=", 1) for part in text.split())


def logs_of(events: DevEvents) -> list[str]:
    return [d["text"] for e, d in events.of_kinds("log")]


def layer_lines(events: DevEvents) -> list[str]:
    """Every log line once the one that says how the dependencies came has arrived."""
    events.wait_for("log", lambda d: "dependency layer" in d["text"], timeout=30)
    return logs_of(events)


def stop(stack: Stack, project: str) -> None:
    with stack.http() as http:
        http.delete(f"/api/v1/projects/{project}/dev")


# First in this module (its stack's layer store starts empty): the miss is this test's own.
def test_a_pnpm_session_makes_a_layer_and_a_second_session_of_its_lockfile_hits_it(
    dev_stack: Stack,
) -> None:
    files = {p.name: p.read_text() for p in PROJECT.iterdir() if p.is_file()}
    first, second = "devpnpmlayer", "devpnpmagain"
    try:
        start_session(dev_stack, first, files, template=None)
        logs = layer_lines(DevEvents(dev_stack, first))  # the session's history, replayed
        assert any("dependency layer miss" in line for line in logs), logs
        assert not any("installing privately" in line for line in logs), logs
        start_session(dev_stack, second, files, template=None)
        second_events = DevEvents(dev_stack, second)
        logs = layer_lines(second_events)
        assert any("dependency layer hit" in line for line in logs), logs
        assert not any("$ pnpm install" in line for line in logs), logs  # nothing installed
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(dev_url(dev_stack, second))
            page.wait_for_function("document.querySelector('#node').textContent !== ''")
            assert shown(page)["pnpm"] == "true"  # pnpm's tree, from the read-only layer
    finally:
        stop(dev_stack, first)
        stop(dev_stack, second)


def in_front(files: dict[str, bytes]) -> bytes:
    """A tarball of an export that keeps its app in front/ (and a README at its top)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in {"README.md": b"# an export\n", **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def react_app_in_front() -> dict[str, bytes]:
    files = {
        f"front/{p.relative_to(TEMPLATE)}": p.read_bytes()
        for p in TEMPLATE.rglob("*")
        if p.is_file() and "node_modules" not in p.parts
    }
    files["front/src/App.tsx"] = APP.encode()
    files["front/src/Counter.tsx"] = counter("v0").encode()
    return files


def test_a_session_of_an_app_in_front_serves_it_and_takes_edits_named_from_the_top(
    dev_stack: Stack,
) -> None:
    project = "devfront"
    tarball = in_front(react_app_in_front())
    gz = {"content-type": "application/gzip"}
    with dev_stack.http() as http:
        refused = http.post(f"/api/v1/projects/{project}/dev", content=tarball, headers=gz)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "invalid_project"
        assert '"root": "front"' in refused.json()["error"]["message"]  # names the folder
        started = http.post(
            f"/api/v1/projects/{project}/dev?root=front", content=tarball, headers=gz
        )
        assert started.status_code == 202, started.text
        assert started.json()["root"] == "front"
    events = DevEvents(dev_stack, project)
    try:
        session = wait_status(dev_stack, project, "ready")
        assert session["root"] == "front"
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(dev_url(dev_stack, project))
            page.wait_for_selector("#count")
            page.click("#count")
            page.wait_for_function("document.querySelector('#count').textContent === 'v0 1'")
            reply = patch(dev_stack, project, {"front/src/Counter.tsx": counter("v1")})
            events.wait_for("hmr", lambda d: d["revision"] == reply["revision"], timeout=60)
            # Fast Refresh of front/src/Counter.tsx: the new label, the same state
            page.wait_for_function("document.querySelector('#count').textContent === 'v1 1'")
        logs = logs_of(events)
        assert any("dependency layer" in line for line in logs), logs  # front/'s lockfile
        assert not events.of_kinds("error"), events.of_kinds("error")
    finally:
        stop(dev_stack, project)


MEMBER_MAIN = "document.querySelector('#app').textContent = 'LABEL'\n"


def test_a_workspace_member_installs_at_the_root_and_runs_its_hoisted_vite(
    dev_stack: Stack,
) -> None:
    project = "devmember"
    files = {
        "package.json": json.dumps({"name": "mono", "private": True, "workspaces": ["apps/*"]}),
        "apps/web/package.json": json.dumps(
            {"name": "web", "private": True, "type": "module", "devDependencies": VITE}
        ),
        "apps/web/index.html": '<div id="app"></div><script type="module" src="/main.js">'
        "</script>\n",
        "apps/web/main.js": MEMBER_MAIN.replace("LABEL", "v0"),
    }
    session = start_session(dev_stack, project, files, template=None, root="apps/web")
    assert session["root"] == "apps/web"
    events = DevEvents(dev_stack, project)
    try:
        logs = layer_lines(events)
        assert any("not shared for a workspace" in line for line in logs), logs
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(dev_url(dev_stack, project))
            page.wait_for_function("document.querySelector('#app').textContent === 'v0'")
            patch(dev_stack, project, {"apps/web/main.js": MEMBER_MAIN.replace("LABEL", "v1")})
            page.wait_for_function("document.querySelector('#app').textContent === 'v1'")
        # npm hoisted Vite to the workspace root's node_modules: the agent found it there
        assert any("using /workspace/node_modules/vite" in t for t in logs_of(events))
    finally:
        stop(dev_stack, project)


def test_a_pnpm_session_on_nvmrc_20_runs_node_20_and_reinstalls_with_pnpm(
    dev_stack: Stack,
) -> None:
    project = "devpnpm"
    files = {p.name: p.read_text() for p in PROJECT.iterdir() if p.is_file()}
    session = start_session(dev_stack, project, files, template=None)
    assert session["environment"]["node"].startswith("20.")
    assert session["environment"]["package_manager"] == PNPM
    events = DevEvents(dev_stack, project)
    try:
        with browser() as chromium:
            page = chromium.new_page()
            page.goto(dev_url(dev_stack, project))
            page.wait_for_function("document.querySelector('#node').textContent !== ''")
            seen = shown(page)
            assert seen["node"] == "v" + session["environment"]["node"]  # the dev server's own
            assert seen["pnpm"] == "true"  # pnpm's node_modules/.pnpm, not npm's flat tree
            logs = [d["text"] for e, d in events.of_kinds("log")]
            assert any(f"(.nvmrc), {PNPM} (pnpm-lock.yaml)" in line for line in logs), logs
            # pnpm's layer of this lockfile (made by this module's first test, else now)
            assert any(re.search(r"dependency layer (hit|miss) ", t) for t in logs), logs

            # A dependency added by a PATCH: the lockfile is stale now, pnpm installs again.
            manifest = json.loads(files["package.json"])
            manifest["dependencies"] = {"ms": "^2.1.3"}
            uses_it = "import ms from 'ms'\ndocument.getElementById('node').title = ms('2h')\n"
            reply = patch(dev_stack, project, {"package.json": json.dumps(manifest)})
            assert reply["restart"] is True
            events.wait_for(
                "log", lambda d: "$ pnpm install --no-frozen-lockfile" in d["text"], timeout=120
            )
            events.wait_for(
                "status",
                lambda d: d["status"] == "ready" and d["revision"] >= reply["revision"],
                timeout=300,
            )
            patch(dev_stack, project, {"main.js": files["main.js"] + uses_it})
            page.reload()
            page.wait_for_function("document.querySelector('#node').title === '7200000'")
            assert shown(page) == seen  # the same Node and manager after the restart
        assert not any("$ npm " in d["text"] for e, d in events.of_kinds("log"))
    finally:
        with dev_stack.http() as http:
            http.delete(f"/api/v1/projects/{project}/dev")


def test_a_node_the_image_does_not_offer_is_refused(dev_stack: Stack) -> None:
    with dev_stack.http() as http:
        answer = http.post("/api/v1/projects/devold/dev", json={"template": "react-ts", "node": 18})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "unsupported_environment"
        assert "offered majors: 20, 22 (default), 24, 26" in error["message"]
        assert http.get("/api/v1/projects/devold/dev").status_code == 404  # nothing started


PLANTING_CONFIG = """import fs from 'node:fs'
import { defineConfig } from 'vite'

fs.writeFileSync('planted.txt', 'written by the dev server')  // project code, as any config
export default defineConfig({})
"""
SEES_PLANT = "node -e \"console.log('KILN-PLANTED=' + require('fs').existsSync('planted.txt'))\""


def test_what_a_dev_server_writes_into_its_workspace_does_not_reach_the_reinstall(
    dev_stack: Stack,
) -> None:
    """The install after a dependency edit has network: it starts from the session's files
    (the API's copy), not from a workspace the dev server could rewrite (its package.json,
    a planted rc file or workspace member). The project's postinstall says what it sees."""
    project = "devplant"
    files = {p.name: p.read_text() for p in PROJECT.iterdir() if p.is_file()}
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = SEES_PLANT
    files |= {"package.json": json.dumps(manifest), "vite.config.js": PLANTING_CONFIG}
    start_session(dev_stack, project, files, template=None)
    events = DevEvents(dev_stack, project)
    try:
        events.wait_for("log", lambda d: "KILN-PLANTED=false" in d["text"], timeout=60)
        manifest["dependencies"] = {"ms": "^2.1.3"}
        reply = patch(dev_stack, project, {"package.json": json.dumps(manifest)})
        assert reply["restart"] is True
        events.wait_for(
            "status",
            lambda d: d["status"] == "ready" and d["revision"] >= reply["revision"],
            timeout=300,
        )
        seen = [line for line in logs_of(events) if line.startswith("KILN-PLANTED=")]
        assert len(seen) >= 2, logs_of(events)[-40:]  # the first install and the reinstall
        assert set(seen) == {"KILN-PLANTED=false"}, seen
    finally:
        stop(dev_stack, project)
