"""Dev sessions run the build environment a build of their files would: the Node that
``.nvmrc`` asks for and the package manager of the lockfile, read back from the dev
server itself (``projects/dev-pnpm``: its vite.config defines the Node it runs on and
whether ``node_modules/.pnpm`` exists; its page shows both), through the real engine,
Redis, HTTP and Chromium.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, launch_stack, require_services
from tests.integration.dev_helpers import DevEvents, browser, dev_url, patch, start_session

pytestmark = pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no Chromium")
PROJECT = Path(__file__).parent / "projects" / "dev-pnpm"
PNPM = "pnpm@10.34.9"  # the image's pin (sandbox/image/toolchains.py)


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
            assert any("$ pnpm install --frozen-lockfile --ignore-scripts" in t for t in logs)

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
