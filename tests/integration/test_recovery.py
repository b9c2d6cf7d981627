"""Faults injected under real builds: every build still reaches an end and leaves nothing.

- a worker SIGKILLed mid-build (with its work-horse): the build runs again on another
  worker, or ends ``worker_lost`` once its attempts are used up;
- a work-horse SIGKILLed: its worker reports it and the build is recovered at once;
- Redis emptied (a private redis-server, FLUSHALL): queued builds are re-enqueued from
  the database, finished builds' logs stay complete;
- the Docker engine cut mid-build (a unix-socket relay in front of it, closed): the build
  ends ``sandbox_error`` at once, and the janitor removes the leftover container later.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import redis

from orchestrator.live.logbus import id_after
from orchestrator.sandbox.pool import build_filter
from tests.integration.conftest import (
    Stack,
    children,
    launch_stack,
    node_project,
    require_services,
    wait_healthy,
)
from tests.integration.faults import DockerRelay, PrivateRedis

pytestmark = pytest.mark.integration

# Quick recovery for tests: a build is lost 4 s after its last heartbeat.
FAST = {
    "KILN_BUILD_LEASE_S": "4",
    "KILN_MAINTENANCE_INTERVAL_S": "1",
    "KILN_REQUEUE_GRACE_S": "2",
}
# Ticks for a few seconds, then writes dist/ (so a second run can succeed).
TICK_THEN_DIST = """
const fs = require("fs");
let i = 0;
const t = setInterval(() => {
  console.log("tick " + i++);
  if (i === 30) {
    clearInterval(t);
    fs.mkdirSync("dist", { recursive: true });
    fs.writeFileSync("dist/index.html", "<!doctype html><h1>late</h1>");
  }
}, 200);
"""
FOREVER = "setInterval(() => console.log('tick'), 200);"


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    require_services()
    client = docker.from_env(timeout=30)
    yield client
    client.close()


@pytest.fixture
def stacks() -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for s in started:
        s.stop()


def containers_of(engine: docker.DockerClient, stack: Stack, build_id: str) -> list[Any]:
    labels = [f"kiln.build={build_id}", f"kiln.instance={stack.instance}"]
    found = engine.containers.list(all=True, sparse=True, filters={"label": labels})
    pooled = build_filter(stack.instance, build_id)  # an idle container running its step
    return list(found) + list(engine.containers.list(sparse=True, filters=pooled))


def wait_for(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def running_in_build_step(stack: Stack, engine: docker.DockerClient, build_id: str) -> None:
    stack.poll(build_id, lambda b: b["phase"] == "building")
    wait_for("the build container", lambda: containers_of(engine, stack, build_id))


def horse_of(worker_pid: int) -> int:
    """The worker's forked work-horse: the child with the worker's own command line (the
    maintenance loop and the egress proxy are separate programs)."""
    own = Path(f"/proc/{worker_pid}/cmdline").read_bytes()

    def find() -> int | None:
        for child in children(worker_pid):
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                return child
        return None

    return int(wait_for("the work-horse", find))


def test_sigkilled_worker_build_runs_again_on_another(
    tmp_path: Path, engine: docker.DockerClient, stacks: list[Stack]
) -> None:
    stack = launch_stack(tmp_path, env=FAST)
    stacks.append(stack)
    build_id = stack.client.submit_files(node_project(TICK_THEN_DIST))["id"]
    running_in_build_step(stack, engine, build_id)

    stack.kill_worker(stack.workers[0])
    assert containers_of(engine, stack, build_id), "the sandbox outlives its worker"
    stack.start_worker()

    end = stack.wait(build_id)
    assert end["status"] == "succeeded", end
    assert end["attempts"] == 2
    assert "worker running this build was lost" in stack.client.logs(build_id)
    assert containers_of(engine, stack, build_id) == []
    assert stack.client.builds(status="running") == []


def test_sigkilled_worker_without_attempts_left_ends_worker_lost(
    tmp_path: Path, engine: docker.DockerClient, stacks: list[Stack]
) -> None:
    stack = launch_stack(tmp_path, env={**FAST, "KILN_MAX_ATTEMPTS": "1"})
    stacks.append(stack)
    build_id = stack.client.submit_files(node_project(FOREVER))["id"]
    running_in_build_step(stack, engine, build_id)

    stack.kill_worker(stack.workers[0])
    stack.start_worker()

    end = stack.wait(build_id)
    assert end["status"] == "failed"
    assert end["error"]["code"] == "worker_lost"
    assert end["attempts"] == 1
    wait_for("the janitor", lambda: containers_of(engine, stack, build_id) == [], timeout=30)
    assert stack.client.builds(status="running") == []


def test_killed_work_horse_is_recovered_by_its_worker(
    tmp_path: Path, engine: docker.DockerClient, stacks: list[Stack]
) -> None:
    # A long lease: only the worker's own report of the dead horse can end this build soon.
    stack = launch_stack(
        tmp_path, env={**FAST, "KILN_BUILD_LEASE_S": "600", "KILN_MAX_ATTEMPTS": "1"}
    )
    stacks.append(stack)
    build_id = stack.client.submit_files(node_project(FOREVER))["id"]
    running_in_build_step(stack, engine, build_id)

    horse = horse_of(stack.workers[0].pid)
    os.kill(horse, signal.SIGKILL)
    end = stack.poll(build_id, lambda b: b["status"] != "running", timeout=60)
    assert end["status"] == "failed" and end["error"]["code"] == "worker_lost", end
    assert "work-horse running this build died" in end["error"]["message"]
    assert containers_of(engine, stack, build_id) == []
    # The worker itself lives on and takes the next build.
    assert stack.workers[0].poll() is None
    quick = stack.client.submit_files(node_project(TICK_THEN_DIST))["id"]
    assert stack.wait(quick)["status"] == "succeeded"


def test_api_restart_leaves_builds_running_and_clients_resume(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    require_services()
    stack = launch_stack(tmp_path, env=FAST)
    stacks.append(stack)
    build_id = stack.client.submit_files(node_project(TICK_THEN_DIST))["id"]
    seen: list[tuple[str, str, dict[str, Any]]] = []
    for event in stack.client.events(build_id):
        seen.append(event)
        if event[1] == "log" and "tick 3" in event[2].get("text", ""):
            break
    assert stack.api is not None
    stack.api.kill()
    stack.api.wait(timeout=10)
    stack.start_api()
    wait_healthy(stack)

    resumed = list(stack.client.events(build_id, last_event_id=seen[-1][0]))
    assert resumed[-1][1] == "end" and resumed[-1][2]["status"] == "succeeded"
    assert resumed[-1][2]["attempts"] == 1  # the worker never noticed
    whole = list(stack.client.events(build_id))
    assert [e[0] for e in seen + resumed] == [e[0] for e in whole]  # no gap, no repeat


def test_emptied_redis_loses_no_build(tmp_path: Path, stacks: list[Stack]) -> None:
    require_services()
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        stack = launch_stack(tmp_path / "var", redis_url=server.url, env=FAST)
        stacks.append(stack)
        first = stack.client.submit_files(node_project(TICK_THEN_DIST))["id"]
        assert stack.wait(first)["status"] == "succeeded"
        log_before = stack.client.logs(first)
        assert "tick 29" in log_before

        # No worker while builds wait; then Redis loses everything.
        worker = stack.workers[0]
        worker.terminate()
        worker.wait(timeout=30)
        waiting = [stack.client.submit_files(node_project(TICK_THEN_DIST))["id"] for _ in range(3)]
        server.flush()
        assert redis.Redis.from_url(server.url).dbsize() == 0

        stack.start_worker()
        for build_id in waiting:
            end = stack.poll(build_id, lambda b: b["status"] not in ("queued", "running"))
            assert end["status"] == "succeeded", end
        assert stack.client.logs(first) == log_before  # archived, not in Redis
        assert stack.client.builds(status="queued") == []
    finally:
        for s in stacks:
            s.stop()
        stacks.clear()
        server.kill()


def test_redis_restart_mid_build_retries_it_and_clients_resume(
    tmp_path: Path, stacks: list[Stack]
) -> None:
    require_services()
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        stack = launch_stack(tmp_path / "var", redis_url=server.url, env=FAST)
        stacks.append(stack)
        build_id = stack.client.submit_files(node_project(TICK_THEN_DIST))["id"]
        seen = []
        for event in stack.client.events(build_id):
            seen.append(event)
            if event[1] == "log" and "tick 3" in event[2].get("text", ""):
                break
        server.kill()  # a restart without persistence: Redis comes back empty
        time.sleep(2)
        server.start()

        resumed = list(stack.client.events(build_id, last_event_id=seen[-1][0]))
        end = resumed[-1]
        assert end[1] == "end" and end[2]["status"] == "succeeded", end
        assert end[2]["attempts"] == 2  # the work-horse lost Redis; the build ran again
        assert all(id_after(e[0], seen[-1][0]) for e in resumed)
        assert stack.workers[0].poll() is None  # the worker waited for Redis and went on
    finally:
        for s in stacks:
            s.stop()
        stacks.clear()
        server.kill()


def test_docker_engine_cut_mid_build_ends_sandbox_error(
    tmp_path: Path, engine: docker.DockerClient, stacks: list[Stack]
) -> None:
    relay = DockerRelay(tmp_path / "docker.sock")
    relay.start()
    stack = launch_stack(tmp_path / "var", env=FAST, worker_env={"DOCKER_HOST": relay.url})
    stacks.append(stack)
    build_id = stack.client.submit_files(node_project(FOREVER))["id"]
    running_in_build_step(stack, engine, build_id)

    relay.cut()
    # Far sooner than the step's own 600 s timeout: the lost engine ends the build.
    end = stack.poll(build_id, lambda b: b["status"] != "running", timeout=120)
    assert end["status"] == "failed"
    assert end["error"]["code"] == "sandbox_error", end
    # The worker could not remove its container while the engine was away...
    assert containers_of(engine, stack, build_id)

    relay.restore()
    # ...the janitor does, once the engine answers again.
    wait_for("the janitor", lambda: containers_of(engine, stack, build_id) == [], timeout=60)
    relay.cut()
