"""The operator commands against a real stack: workers, queue, drain, retry, gc, doctor."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    WRITE_DIST,
    Stack,
    _kiln,
    launch_stack,
    node_project,
    require_services,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_services()
    stack = launch_stack(tmp_path_factory.mktemp("ops-var"))
    yield stack
    subprocess.run([_kiln(), "drain", "--undo"], env=stack.env, check=False)
    stack.stop()


def kiln(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "KILN_URL": stack.url, "COLUMNS": "200"}
    return subprocess.run([_kiln(), *args], env=env, capture_output=True, text=True, timeout=120)


def test_workers_lists_the_running_worker(ops_stack: Stack) -> None:
    result = kiln(ops_stack, "workers")
    assert result.returncode == 0, result.stderr
    assert ops_stack.instance in result.stdout
    assert "1 worker(s)" in result.stderr


def test_drain_holds_new_builds_until_undone(ops_stack: Stack) -> None:
    assert kiln(ops_stack, "drain").returncode == 0
    build_id = ops_stack.client.submit_files(node_project(WRITE_DIST))["id"]
    time.sleep(4)  # a worker that was waiting on the queue puts the build back and stops
    assert ops_stack.client.build(build_id)["status"] == "queued"
    listed = kiln(ops_stack, "queue")
    assert build_id in listed.stdout and "DRAINING" in listed.stderr
    assert kiln(ops_stack, "drain", "--undo").returncode == 0
    assert ops_stack.wait(build_id)["status"] == "succeeded"


def test_retry_builds_the_same_source_again(ops_stack: Stack) -> None:
    failing = node_project("process.exit(3)")
    first = ops_stack.client.submit_files(failing, project="again")["id"]
    assert ops_stack.wait(first)["status"] == "failed"
    result = kiln(ops_stack, "retry", first, "--no-follow")
    assert result.returncode == 0, result.stderr
    second = result.stdout.strip()
    assert second and second != first
    end = ops_stack.wait(second)
    assert (end["project"], end["status"]) == ("again", "failed")
    # Ended too: fine. Without --no-follow, retry follows like submit: this one fails (1).
    followed = kiln(ops_stack, "retry", second)
    assert followed.returncode == 1 and "build_failed" in followed.stderr
    assert kiln(ops_stack, "retry", "0" * 16).returncode == 2  # not found: refused input


def test_gc_removes_old_artifacts_but_keeps_the_newest(ops_stack: Stack) -> None:
    ids = [
        ops_stack.client.submit_files(node_project(WRITE_DIST), project="gc-me")["id"]
        for _ in range(3)
    ]
    for build_id in ids:
        assert ops_stack.wait(build_id)["status"] == "succeeded"
    artifacts = ops_stack.var_dir / "artifacts"
    dry = kiln(ops_stack, "gc", "--keep", "1", "--keep-days", "0", "--dry-run")
    assert dry.returncode == 0 and all((artifacts / i).is_dir() for i in ids)
    result = kiln(ops_stack, "gc", "--keep", "1", "--keep-days", "0")
    assert result.returncode == 0, result.stderr
    removed = set(result.stdout.split())
    assert set(ids[:2]) <= removed and ids[2] not in removed
    assert not (artifacts / ids[0]).exists() and (artifacts / ids[2] / "dist").is_dir()
    assert ops_stack.preview(ids[2]).status_code == 200
    assert not Path(ops_stack.var_dir / "sources" / f"{ids[0]}.tar").exists()


def test_doctor_reports_every_part(ops_stack: Stack) -> None:
    result = kiln(ops_stack, "doctor")
    for name in ("docker", "runtime", "redis", "database", "sandbox image", "disk", "workers"):
        assert name in result.stdout
    assert "1 worker(s)" in result.stdout
    assert f"{ops_stack.instance} (KILN_INSTANCE)" in result.stdout


def test_metrics_and_structured_logs(ops_stack: Stack) -> None:
    files = node_project(WRITE_DIST)
    build_id = ops_stack.client.submit_files(files, project="metered", fresh=True)["id"]
    assert ops_stack.wait(build_id)["status"] == "succeeded"
    with ops_stack.http() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    assert samples['kiln_builds_finished_total{code="",status="succeeded"}'] >= 1
    assert samples['kiln_step_duration_seconds_count{step="build"}'] >= 1
    assert samples["kiln_queue_wait_seconds_count"] >= 1
    assert samples["kiln_workers"] == 1
    assert samples['kiln_builds{status="running"}'] >= 0
    # Every worker log line about the build names it.
    lines = (ops_stack.var_dir / "logs" / "worker-0.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    about = [r for r in records if r["build_id"] == build_id]
    assert about, "no structured line carries the build id"
    assert all(set(r) >= {"ts", "level", "logger", "msg"} for r in records)
