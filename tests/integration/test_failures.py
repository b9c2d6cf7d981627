"""Builds that fail, time out or are cancelled end in the right state with a useful error."""

from __future__ import annotations

import json
import time

import docker
import pytest

from tests.integration.conftest import WRITE_DIST, Stack, node_project

pytestmark = pytest.mark.integration

SLOW_BUILD = """
let i = 0;
setInterval(() => console.log("tick " + i++), 200);
"""


def test_syntax_error_fails_with_build_failed_and_log_tail(stack: Stack) -> None:
    reply = stack.client.submit_files(
        {"src/main.js": "import './style.css'\nexport const = ;\n"}, template="vanilla"
    )
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["phase"] == "done"
    assert end["error"]["code"] == "build_failed"
    assert "exit code" in end["error"]["message"]
    assert "main.js" in end["error"]["log_tail"]
    assert end["preview_url"] is None
    page = stack.preview(reply["id"])
    assert page.status_code == 404
    assert "build_failed" in page.text and "main.js" in page.text  # the error, not the app


def test_missing_package_fails_with_install_failed(stack: Stack) -> None:
    files = node_project(WRITE_DIST)
    files["package.json"] = files["package.json"].replace(
        '"private": true', '"private": true, "dependencies": {"kiln-no-such-package-4f1c": "1.0.0"}'
    )
    end = stack.wait(stack.client.submit_files(files)["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "install_failed"
    assert "kiln-no-such-package-4f1c" in end["error"]["log_tail"]


def test_build_without_dist_fails_clearly(stack: Stack) -> None:
    end = stack.wait(stack.client.submit_files(node_project("console.log('no output')"))["id"])
    assert end["status"] == "failed"
    assert "dist/" in end["error"]["message"]


def test_symlink_in_output_is_refused(stack: Stack) -> None:
    script = WRITE_DIST + 'fs.symlinkSync("/etc/passwd", "dist/passwd");\n'
    reply = stack.client.submit_files(node_project(script))
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "unsafe_output"
    assert stack.preview(reply["id"], "/passwd").status_code == 404


def test_timeout_kills_the_build(stack: Stack, kiln_containers: docker.DockerClient) -> None:
    reply = stack.client.submit_files(node_project(SLOW_BUILD), limits={"timeout_s": 3})
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "timeout"
    assert "tick" in end["error"]["log_tail"]
    assert _containers_of(kiln_containers, reply["id"]) == []


def test_memory_limit_gives_out_of_memory(stack: Stack) -> None:
    hog = "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));"
    reply = stack.client.submit_files(node_project(hog), limits={"memory_mb": 128})
    end = stack.wait(reply["id"])
    assert end["status"] == "failed"
    assert end["error"]["code"] == "out_of_memory", end["error"]


def test_cancel_running_build(stack: Stack, kiln_containers: docker.DockerClient) -> None:
    reply = stack.client.submit_files(node_project(SLOW_BUILD))
    build_id = reply["id"]
    _wait_for_phase(stack, build_id, "building")
    waiting = stack.preview(build_id)
    assert waiting.status_code == 503 and 'http-equiv="refresh"' in waiting.text
    asked = time.monotonic()
    assert stack.client.cancel(build_id)["id"] == build_id
    end = stack.wait(build_id)
    assert end["status"] == "cancelled"
    assert end["error"]["code"] == "cancelled"
    deadline = asked + 5
    while _containers_of(kiln_containers, build_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _containers_of(kiln_containers, build_id) == []


def test_cancel_queued_build_and_finished_build(stack: Stack) -> None:
    blocker = stack.client.submit_files(node_project(SLOW_BUILD), limits={"timeout_s": 20})
    waiting = stack.client.submit_files(node_project(WRITE_DIST))
    assert stack.client.build(waiting["id"])["status"] == "queued"
    cancelled = stack.client.cancel(waiting["id"])
    assert cancelled["status"] == "cancelled"
    end = stack.wait(waiting["id"])
    assert end["status"] == "cancelled"
    stack.client.cancel(blocker["id"])
    assert stack.wait(blocker["id"])["status"] == "cancelled"
    with stack.http() as http:
        again = http.post(f"/api/v1/builds/{waiting['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def _wait_for_phase(stack: Stack, build_id: str, phase: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        build = stack.client.build(build_id)
        if build["phase"] == phase:
            return
        assert build["status"] in ("queued", "running"), build
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} never reached {phase}")


def _containers_of(client: docker.DockerClient, build_id: str) -> list[str]:
    found = client.containers.list(all=True, filters={"label": f"kiln.build={build_id}"})
    return [c.id for c in found]


PROBE_NETWORK = """
const fs = require("fs");
const https = require("https");
const done = (what) => { fs.writeFileSync("network-" + process.env.npm_lifecycle_event, what); };
https.get("https://registry.npmjs.org/", () => done("online"))
  .on("error", (e) => done("offline: " + e.code))
  .setTimeout(3000, () => done("offline: timeout"));
"""
COPY_PROBES = (
    WRITE_DIST
    + """
for (const f of fs.readdirSync(".").filter((f) => f.startsWith("network-"))) {
  fs.copyFileSync(f, "dist/" + f + ".txt");
}
"""
)


def test_project_scripts_run_without_network(stack: Stack) -> None:
    files = node_project(
        "require('./probe.js'); setTimeout(() => { COPY }, 3500);".replace(
            "COPY", COPY_PROBES.replace("\n", " ")
        ),
        **{"probe.js": PROBE_NETWORK},
    )
    manifest = json.loads(files["package.json"])
    manifest["scripts"]["postinstall"] = "node probe.js"
    files["package.json"] = json.dumps(manifest)
    build_id = stack.client.submit_files(files)["id"]
    end = stack.wait(build_id)
    assert end["status"] == "succeeded", end["error"]
    for lifecycle in ("postinstall", "build"):
        probe = stack.preview(build_id, f"/network-{lifecycle}.txt")
        assert probe.status_code == 200, f"the {lifecycle} probe did not run"
        assert probe.text.startswith("offline"), (lifecycle, probe.text)
