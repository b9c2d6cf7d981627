"""The optional gVisor runtime: scripts and build steps run under runsc, install stays on runc."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import docker
import pytest

from tests.integration.conftest import Stack, node_project, require_services, start_stack
from tests.integration.dev_helpers import start_session

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
    env = {"KILN_BUILD_RUNTIME": "runsc", "KILN_DEV_RUNTIME": "runsc-dev"}
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


def test_a_dev_session_runs_under_gvisor_and_answers_through_its_socket(
    gvisor_stack: Stack,
) -> None:
    project = "gvisor-dev"
    start_session(gvisor_stack, project)  # ready: "/" answered through the preview host
    try:
        labels = [f"kiln.instance={gvisor_stack.instance}", "kiln.dev=1", f"kiln.project={project}"]
        engine = docker.from_env(timeout=30)
        (container,) = engine.containers.list(filters={"label": labels})
        assert container.attrs["HostConfig"]["Runtime"] == "runsc-dev"
        assert container.attrs["HostConfig"]["NetworkMode"] == "none"
        with gvisor_stack.http() as http:
            page = http.get(
                "/", headers={"Host": f"dev--{project}.preview.localhost:{gvisor_stack.port}"}
            )
        assert page.status_code == 200 and "/@vite/client" in page.text
    finally:
        with gvisor_stack.http() as http:
            http.delete(f"/api/v1/projects/{project}/dev")
