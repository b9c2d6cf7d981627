"""The optional gVisor runtime: scripts and build steps run under runsc, install stays on runc."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import docker
import pytest

from tests.integration.conftest import Stack, node_project, require_services, start_stack

pytestmark = pytest.mark.security

KERNEL_PROBE = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<h1>gvisor</h1>");
fs.writeFileSync("dist/kernel-build.txt", fs.readFileSync("/proc/version", "utf8"));
fs.copyFileSync("kernel-postinstall.txt", "dist/kernel-postinstall.txt");
"""
PROC_VERSION_TO_FILE = """
const fs = require("fs");
fs.writeFileSync("kernel-postinstall.txt", fs.readFileSync("/proc/version", "utf8"));
"""
GVISOR_KERNEL = "Linux version 4.4.0"  # the kernel gVisor's Sentry reports


@pytest.fixture(scope="module")
def gvisor_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    if "runsc" not in docker.from_env(timeout=30).info().get("Runtimes", {}):
        reason = "gVisor's runsc is not registered with Docker (scripts/test registers it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    env = {"KILN_BUILD_RUNTIME": "runsc"}
    with start_stack(tmp_path_factory.mktemp("kiln-gvisor"), extra_env=env) as running:
        yield running


def test_scripts_and_build_run_under_gvisor(gvisor_stack: Stack) -> None:
    files = node_project(
        KERNEL_PROBE,
        **{"probe.js": PROC_VERSION_TO_FILE},
    )
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = "node probe.js"
    files["package.json"] = json.dumps(manifest)
    build_id = gvisor_stack.client.submit_files(files)["id"]
    end = gvisor_stack.wait(build_id)
    assert end["status"] == "succeeded", end["error"]
    for step in ("postinstall", "build"):
        assert GVISOR_KERNEL in gvisor_stack.preview(build_id, f"/kernel-{step}.txt").text


def test_a_vite_template_builds_and_serves_under_gvisor(gvisor_stack: Stack) -> None:
    build_id = gvisor_stack.client.submit_files({}, template="react-ts")["id"]
    end = gvisor_stack.wait(build_id)
    assert end["status"] == "succeeded", end["error"]
    assert '<div id="root">' in gvisor_stack.preview(build_id).text
