"""``latest--{project}``: the newest succeeded build, moving atomically, never to a failure."""

from __future__ import annotations

import threading
import time

import httpx

from tests.integration.conftest import Stack, node_project

WRITE = """
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
fs.writeFileSync("dist/index.html", "<!doctype html><p>MARK</p>");
"""


def submit(stack: Stack, project: str, build_js: str) -> str:
    body = {"files": node_project(build_js), "project": project, "fresh": True}
    with stack.http() as http:
        reply = http.post("/api/v1/builds", json=body)
        assert reply.status_code == 202, reply.text
        return str(reply.json()["id"])


def latest(stack: Stack, project: str) -> httpx.Response:
    with stack.http() as http:
        return http.get("/", headers={"Host": f"latest--{project}.preview.localhost:{stack.port}"})


def test_latest_follows_successes_only_and_never_tears(stack: Stack) -> None:
    project = "alias"
    failing = submit(stack, project, "process.exit(1)")
    assert stack.wait(failing)["status"] == "failed"
    before = latest(stack, project)
    assert before.status_code == 404 and "failed" in before.text  # the status page

    first = submit(stack, project, WRITE.replace("MARK", "first"))
    end = stack.wait(first)
    assert end["urls"]["latest"] == f"http://latest--{project}.preview.localhost:{stack.port}/"
    # The alias re-reads the database at most once a second (KILN_PREVIEW_LATEST_RECHECK_S).
    deadline = time.monotonic() + 10
    answer = latest(stack, project)
    while "X-Kiln-Build" not in answer.headers and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = latest(stack, project)
    assert answer.headers["X-Kiln-Build"] == first and "<p>first</p>" in answer.text

    broken = submit(stack, project, "process.exit(2)")
    assert stack.wait(broken)["status"] == "failed"
    assert latest(stack, project).headers["X-Kiln-Build"] == first

    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            response = latest(stack, project)
            seen.append((response.headers.get("X-Kiln-Build", ""), response.text))

    reader = threading.Thread(target=hammer)
    reader.start()
    second = submit(stack, project, WRITE.replace("MARK", "second"))
    stack.wait(second)
    deadline = time.monotonic() + 30
    while not any(build == second for build, _ in seen) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    reader.join()
    marks = {first: "<p>first</p>", second: "<p>second</p>"}
    for build, text in seen:
        assert build in marks and marks[build] in text, (build, text)  # one build per answer
    switched = [build for build, _ in seen]
    assert switched.index(second) > 0 and first not in switched[switched.index(second) :]
