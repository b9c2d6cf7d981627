"""Resource attacks: each is stopped by a limit enforced from outside the container."""

from __future__ import annotations

import time

import docker
import pytest

from tests.integration.conftest import WRITE_DIST, Stack, containers_of, node_project
from tests.security.conftest import Beside

pytestmark = pytest.mark.security

FORK_BOMB = """
const { spawn } = require("child_process");
const fs = require("fs");
let started = 0, refused = 0;
function more() {
  if (started + refused >= 600) return report();
  const child = spawn("sleep", ["60"]);
  child.on("spawn", () => started++);
  child.on("error", () => refused++);
  setImmediate(more);
}
function report() {
  setTimeout(() => {
    fs.mkdirSync("dist", { recursive: true });
    fs.writeFileSync("dist/index.html", "<h1>bomb</h1>");
    fs.writeFileSync("dist/report.json", JSON.stringify({ started, refused }));
    process.exit(0);
  }, 2000);
}
more();
"""
MEMORY_BOMB = "const a = []; for (;;) a.push(Buffer.alloc(16 << 20, 1));"
CPU_SPIN = "console.log('spinning'); for (;;) {}"
LOG_FLOOD = "const line = 'flood '.repeat(200) + '\\n'; for (;;) require('fs').writeSync(1, line);"
DISK_FILL = """
const fs = require("fs");
const chunk = Buffer.alloc(1 << 20, 1);
const fd = fs.openSync("fill.bin", "w");
for (let i = 0; ; i++) fs.writeSync(fd, chunk);
"""


def test_fork_bomb_hits_the_pids_limit(beside: Beside, hostile_stack: Stack) -> None:
    build_id, end = beside.attack(node_project(FORK_BOMB))
    assert end["status"] == "succeeded", end["error"]
    report = hostile_stack.preview(build_id, "/report.json").json()
    limit = int(hostile_stack.env["KILN_PIDS_LIMIT"])
    assert report["refused"] > 0, report
    assert report["started"] < limit, report


def test_memory_bomb_is_out_of_memory(beside: Beside) -> None:
    _, end = beside.attack(node_project(MEMORY_BOMB), limits={"memory_mb": 256})
    assert (end["status"], end["error"]["code"]) == ("failed", "out_of_memory"), end["error"]


def test_cpu_spin_past_the_timeout_is_killed(
    beside: Beside, kiln_containers: docker.DockerClient
) -> None:
    build_id, end = beside.attack(node_project(CPU_SPIN), limits={"timeout_s": 5})
    assert (end["status"], end["error"]["code"]) == ("failed", "timeout"), end["error"]
    assert "5 s time limit" in end["error"]["message"]
    assert containers_of(kiln_containers, build_id) == []


def test_log_flood_is_cut_at_the_cap(beside: Beside, hostile_stack: Stack) -> None:
    build_id, end = beside.attack(node_project(LOG_FLOOD))
    assert (end["status"], end["error"]["code"]) == ("failed", "output_too_large"), end["error"]
    cap = int(hostile_stack.env["KILN_MAX_LOG_MB"]) * 1024 * 1024
    log = hostile_stack.client.logs(build_id)
    assert cap / 2 < len(log.encode()) < cap * 1.5  # kept up to the cap, then stopped
    assert "log output" in log.splitlines()[-1]  # the notice is the last word


def test_disk_fill_stops_at_the_workspace_size(beside: Beside, hostile_stack: Stack) -> None:
    build_id, end = beside.attack(node_project(DISK_FILL))
    assert (end["status"], end["error"]["code"]) == ("failed", "disk_full"), end["error"]
    assert f"{hostile_stack.env['KILN_WORKSPACE_MB']} MB" in end["error"]["message"]
    work = hostile_stack.var_dir / "work"
    leftovers = [work / build_id, work / f"{build_id}.img"]
    deadline = time.monotonic() + 30  # the workspace is removed just after the end event
    while any(p.exists() for p in leftovers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(p.exists() for p in leftovers)


def test_limits_above_the_maximums_are_clamped(hostile_stack: Stack) -> None:
    reply = hostile_stack.client.submit_files(
        node_project(WRITE_DIST), limits={"timeout_s": 10**6, "memory_mb": 10**6, "cpus": 64}
    )
    hostile_stack.wait(reply["id"])
    build = hostile_stack.client.build(reply["id"])
    assert build["status"] == "succeeded"
    assert build["limits"] == {"timeout_s": 900, "memory_mb": 4096, "cpus": 2.0}
