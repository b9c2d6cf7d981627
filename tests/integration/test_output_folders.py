"""The folder a build publishes when it is not dist/, and what a non-static app is told.

Real API, worker, Docker and Redis: the project's own Vite is asked for build.outDir in
a container like the build's, and a SvelteKit-shaped project is named with its fix.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

REACT_CONFIG = """import react from '@vitejs/plugin-react'
import {{ defineConfig }} from 'vite'

export default defineConfig({{ plugins: [react()], build: {{ outDir: {out_dir} }} }})
"""


def logs_of(stack: Stack, build_id: str) -> str:
    return "\n".join(e.data["text"] for e in stack.events(build_id) if e.event == "log")


def test_a_vite_out_dir_of_build_is_published_and_served(stack: Stack) -> None:
    config = REACT_CONFIG.format(out_dir="'build'")
    reply = stack.client.submit_files(
        {"vite.config.js": config}, template="react", project="outdir-build"
    )
    end = stack.wait(reply["id"])
    assert end["status"] == "succeeded", end["error"]
    assert end["output_dir"] == "build"
    assert "publishing build/ (build.outDir of the Vite config)" in logs_of(stack, reply["id"])

    index = stack.preview(reply["id"], "/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', index.text)
    assert scripts, index.text
    script = stack.preview(reply["id"], scripts[0])
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )


def assert_nothing_published_outside(stack: Stack, build_id: str) -> None:
    assert stack.preview(build_id, "/").status_code != 200
    work_dir = stack.var_dir / "work"
    assert work_dir.is_dir()  # the workspaces' parent: an escape/ would land beside it
    for outside in (work_dir.parent / "escape", work_dir.parent.parent / "escape"):
        assert not outside.exists()


def test_a_vite_out_dir_outside_the_workspace_is_refused(stack: Stack) -> None:
    # /tmp is the build container's own scratch space: Vite can write there, Kiln refuses.
    config = REACT_CONFIG.format(out_dir="'../tmp/escape'")
    reply = stack.client.submit_files(
        {"vite.config.js": config}, template="react", project="outdir-escape"
    )
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "unsafe_output", end["error"]
    assert "'../tmp/escape', outside the project" in end["error"]["message"]
    assert_nothing_published_outside(stack, reply["id"])


def test_a_vite_out_dir_above_the_workspace_cannot_even_be_written(stack: Stack) -> None:
    config = REACT_CONFIG.format(out_dir="'../../escape'")
    reply = stack.client.submit_files(
        {"vite.config.js": config}, template="react", project="outdir-escape"
    )
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    # /escape is on the container's read-only root: Vite's own write fails, in the build.
    assert end["error"]["code"] == "build_failed", end["error"]
    assert "mkdir '/escape'" in end["error"]["log_tail"]
    assert_nothing_published_outside(stack, reply["id"])


SVELTEKIT_BUILD = """
const fs = require("fs");
fs.mkdirSync(".svelte-kit/output/client/_app", { recursive: true });
fs.mkdirSync(".svelte-kit/output/server", { recursive: true });
fs.writeFileSync(".svelte-kit/output/client/_app/start.js", "export {}");
fs.writeFileSync(".svelte-kit/output/server/index.js", "export {}");
"""


def sveltekit_project(build_js: str) -> dict[str, str]:
    """A SvelteKit-shaped project (kit and adapter-auto installed) with a fake build."""
    manifest = {
        "name": "kit-app",
        "private": True,
        "type": "commonjs",
        "scripts": {"build": "node build.js"},
        "devDependencies": {"@sveltejs/kit": "^2.20.0", "@sveltejs/adapter-auto": "^6.0.0"},
    }
    return {
        "package.json": json.dumps(manifest),
        "build.js": build_js,
        "svelte.config.js": "export default { kit: {} }\n",
    }


def test_a_sveltekit_app_on_adapter_auto_is_told_to_use_adapter_static(stack: Stack) -> None:
    reply = stack.client.submit_files(sveltekit_project(SVELTEKIT_BUILD), project="outdir-kit")
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    error = end["error"]
    assert error["code"] == "build_failed", error
    message = error["message"]
    assert "wrote no index.html" in message and "dist/" in message and "build/" in message
    assert "SvelteKit (adapter-auto)" in message and "@sveltejs/adapter-static" in message
    item = error["diagnostics"]["items"][0]
    assert error["diagnostics"]["category"] == "config"
    assert item["file"] == "svelte.config.js"
    assert "SvelteKit" in item["message"] and "@sveltejs/adapter-static" in item["message"]


def test_a_framework_folder_that_is_a_link_to_the_host_is_refused(stack: Stack) -> None:
    # build/ (SvelteKit's static folder) made a link to /etc, with an index.html "there".
    build_js = SVELTEKIT_BUILD + 'fs.symlinkSync("/etc", "build");\n'
    reply = stack.client.submit_files(sveltekit_project(build_js), project="outdir-kit")
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "unsafe_output", end["error"]
    assert "build/ goes through a link (build)" in end["error"]["message"]
    page = stack.preview(reply["id"], "/passwd")
    assert page.status_code != 200 and "root:" not in page.text
