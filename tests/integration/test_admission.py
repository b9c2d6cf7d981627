"""Load and fairness over real HTTP: queue limits (429 + Retry-After), Idempotency-Key,
supersede, the per-project concurrency cap, and refusal when the disk is nearly full."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    WRITE_DIST,
    Stack,
    launch_stack,
    node_project,
    require_services,
)

pytestmark = pytest.mark.integration

SLOW_DIST = """
setTimeout(() => {
  const fs = require("fs");
  fs.mkdirSync("dist", { recursive: true });
  fs.writeFileSync("dist/index.html", "<!doctype html><h1>slow</h1>");
}, 3000);
"""


@pytest.fixture
def queue_only(tmp_path: Path) -> Iterator[Stack]:
    """An API without workers: whatever is submitted stays queued."""
    require_services()
    stack = launch_stack(
        tmp_path,
        workers=0,
        env={"KILN_MAX_QUEUED": "5", "KILN_MAX_QUEUED_PER_PROJECT": "2"},
    )
    yield stack
    stack.stop()


def submit(stack: Stack, project: str, **extra: object) -> httpx.Response:
    headers = {}
    key = extra.pop("key", None)
    if key:
        headers["Idempotency-Key"] = str(key)
    body = {"files": node_project(WRITE_DIST), "project": project, **extra}
    with stack.http() as http:
        return http.post("/api/v1/builds", json=body, headers=headers)


def test_full_project_queue_answers_429_with_retry_after(queue_only: Stack) -> None:
    assert submit(queue_only, "busy").status_code == 202
    assert submit(queue_only, "busy").status_code == 202
    refused = submit(queue_only, "busy")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "queue_full"
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(queue_only.client.builds(project="busy")) == 2  # nothing recorded for it
    # Other projects still get in, until the whole queue is full.
    for project in ("a", "b", "c"):
        assert submit(queue_only, project).status_code == 202
    overall = submit(queue_only, "d")
    assert overall.status_code == 429 and "queue is full" in overall.json()["error"]["message"]


def test_idempotency_key_returns_the_same_build(queue_only: Stack) -> None:
    first = submit(queue_only, "idem", key="req-42")
    again = submit(queue_only, "idem", key="req-42")
    other = submit(queue_only, "idem", key="req-43")
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]
    assert len(queue_only.client.builds(project="idem")) == 2
    bad = submit(queue_only, "idem", key="spaces are not allowed")
    assert bad.status_code == 400


def test_supersede_cancels_older_queued_builds(queue_only: Stack) -> None:
    older = [submit(queue_only, "sup").json()["id"] for _ in range(2)]
    newest = submit(queue_only, "sup", supersede=True)  # admitted although the project is full
    assert newest.status_code == 202
    for build_id in older:
        end = queue_only.wait(build_id)
        assert end["status"] == "cancelled"
        assert end["error"]["code"] == "superseded"
        assert newest.json()["id"] in end["error"]["message"]
    assert queue_only.client.build(newest.json()["id"])["status"] == "queued"


def test_project_concurrency_cap_runs_one_at_a_time(tmp_path: Path) -> None:
    require_services()
    stack = launch_stack(tmp_path, workers=2, env={"KILN_PROJECT_CONCURRENCY": "1"})
    try:
        ids = [
            stack.client.submit_files(node_project(SLOW_DIST), project="capped")["id"]
            for _ in range(2)
        ]
        other = stack.client.submit_files(node_project(SLOW_DIST), project="free")["id"]
        ends = [stack.wait(i) for i in [*ids, other]]
        assert all(e["status"] == "succeeded" for e in ends), ends
        first, second = sorted(ends[:2], key=lambda e: e["started_at"])
        assert _t(second["started_at"]) >= _t(first["finished_at"])
        # The other project was not held back behind the capped one.
        assert _t(ends[2]["started_at"]) < _t(second["started_at"])
    finally:
        stack.stop()


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_nearly_full_disk_refuses_new_builds_and_keeps_serving(tmp_path: Path) -> None:
    require_services()
    var = tmp_path / "small-disk"
    var.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(var)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    stack = None
    try:
        stack = launch_stack(var, env={"KILN_MIN_FREE_DISK_MB": "48"})
        built = stack.client.submit_files(node_project(WRITE_DIST))["id"]
        assert stack.wait(built)["status"] == "succeeded"
        # Fill the disk to below the floor.
        with (var / "filler").open("wb") as filler, contextlib.suppress(OSError):
            for _ in range(96):
                filler.write(b"\0" * (1024 * 1024))
                filler.flush()
        refused = submit(stack, "late")
        assert refused.status_code == 507
        assert refused.json()["error"]["code"] == "disk_full"
        assert "nearly full" in refused.json()["error"]["message"]
        assert stack.preview(built).status_code == 200  # existing previews keep working
        (var / "filler").unlink()
        assert submit(stack, "late").status_code == 202
    finally:
        if stack is not None:
            stack.stop()
        subprocess.run(["umount", "-l", str(var)], check=False)
