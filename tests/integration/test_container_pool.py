"""Idle containers (orchestrator/sandbox/pool.py) on the real engine: a step in one sees
what its own container would, no more, and nothing the step started outlives it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from orchestrator.cache.layers import READ_ONLY_MOUNT, LayerStore
from orchestrator.context import Context
from orchestrator.errors import ErrorCode, SandboxError
from orchestrator.records.models import Phase
from orchestrator.sandbox import workspace
from orchestrator.sandbox.mounts import mounts_at
from orchestrator.sandbox.pool import IDLE_UID, ContainerPool, build_filter
from orchestrator.sandbox.protocol import StepResult
from orchestrator.sandbox.runner import SCRATCH_DIRS, Sandbox
from orchestrator.sandbox.step import Limits, Step
from orchestrator.settings import Settings
from tests.integration.conftest import containers_of

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the pool mounts workspaces on the host (the worker runs as root)"
)
MEMORY_MB = 256


class Pooled:
    """A private pool of one idle container per kind, and the sandbox that uses it."""

    def __init__(self, var: Path) -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            var_dir=var,
            instance=f"kiln-pool-{uuid.uuid4().hex[:8]}",
            memory_mb=MEMORY_MB,
            container_pool=1,
        )
        self.ctx = Context(settings)
        pool = self.ctx.container_pool
        assert pool is not None
        pool.released = None  # no keeper here: the tests fill the slots themselves
        self.pool: ContainerPool = pool
        sandbox = self.ctx.sandbox
        assert isinstance(sandbox, Sandbox)
        self.sandbox = sandbox
        self.limits = Limits(settings.timeout_s, settings.memory_mb, settings.cpus)
        self.fill()

    def fill(self) -> None:
        self.pool.fill()
        assert self.state("offline-0").get("ready"), "the idle container did not start"

    def state(self, name: str) -> dict[str, object]:
        loaded: dict[str, object] = json.loads((self.pool.root / f"{name}.json").read_text())
        return loaded

    def run(
        self,
        argv: list[str],
        ws: Path,
        *,
        workdir: str = "",
        node_modules: Path | None = None,
        limits: Limits | None = None,
    ) -> tuple[StepResult, list[str]]:
        lines: list[str] = []
        step = Step("build", Phase.BUILDING, argv, False, ErrorCode.BUILD_FAILED, workdir=workdir)
        result = self.sandbox.run_step(
            step,
            build_id="pool-test",
            limits=limits or self.limits,
            workspace=ws,
            on_output=lambda _stream, got: lines.extend(got),
            should_cancel=lambda: False,
            node_modules=node_modules,
        )
        return result, lines


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[Pooled]:
    made = Pooled(tmp_path / "var")
    try:
        yield made
    finally:
        made.pool.drain()
        assert mounts_at(made.pool.root) == 0  # nothing of the pool is left mounted
        mine = {"label": f"kiln.instance={made.ctx.settings.instance}"}
        assert docker.from_env().containers.list(all=True, filters=mine) == []


@pytest.fixture
def ws(tmp_path: Path, pooled: Pooled) -> Iterator[Path]:
    folder = tmp_path / "var" / "work" / "b1"
    workspace.create(folder, 64)
    (folder / "hello.txt").write_text("hello from the host\n")
    pooled.sandbox.prepare_dir(folder)
    yield folder
    workspace.remove(folder)


def read_only_layer(tmp_path: Path) -> Path:
    """A layer as the layer store makes one: an ext4 image mounted read-only."""
    folder = tmp_path / "layer"
    workspace.create(folder, 16)
    modules = folder / "node_modules"
    (modules / "left-pad").mkdir(parents=True)
    (modules / "left-pad" / "index.js").write_text("module.exports = 'padded'\n")
    for name in SCRATCH_DIRS:
        (modules / name).mkdir()
    workspace.unmount(folder)
    workspace.mount_image(workspace.image_path(folder), folder, READ_ONLY_MOUNT)
    return modules


def container_gone(container_id: str) -> bool:
    try:
        info = docker.from_env().api.inspect_container(container_id)
    except docker.errors.NotFound:
        return True
    return not info["State"]["Running"]


def step_over(container_id: str) -> bool:
    """Nothing of a step runs in its container: gone, or only its idle processes left
    (Docker's init and ``sleep``, as the idle user), for the keeper to remove."""
    if container_gone(container_id):
        return True
    top = docker.from_env().api.top(container_id, ps_args="-o pid,uid,args")
    rows = [dict(zip(top["Titles"], row, strict=True)) for row in top["Processes"]]
    return len(rows) == 2 and all(row["UID"] == str(IDLE_UID) for row in rows)


def test_a_step_runs_in_the_idle_container_which_it_does_not_outlive(
    pooled: Pooled, ws: Path
) -> None:
    used = str(pooled.state("offline-0")["container"])
    result, lines = pooled.run(
        ["sh", "-c", "cat hello.txt; id -u; ls /sys/class/net; echo built > out.txt"], ws
    )
    assert result.ok, lines
    assert lines[:2] == ["hello from the host", "10001"]
    assert lines[2:] == ["lo"]  # no network: only loopback, as in its own container
    assert (ws / "out.txt").read_text() == "built\n"  # written into the build's workspace
    assert step_over(used)
    instance = pooled.ctx.settings.instance  # and the ended step's build has no container
    assert docker.from_env().containers.list(filters=build_filter(instance, "pool-test")) == []
    assert pooled.state("offline-0")["ready"] is False
    assert mounts_at(pooled.pool.root / "offline-0") == 0  # the workspace is no longer bound
    pooled.fill()  # what the keeper does once told: the used container goes, a fresh one
    assert pooled.state("offline-0")["container"] != used
    assert container_gone(used)


def test_a_layer_is_read_only_and_its_scratch_folders_private(
    pooled: Pooled, ws: Path, tmp_path: Path
) -> None:
    layer = read_only_layer(tmp_path)
    try:
        (ws / "front").mkdir()
        pooled.sandbox.prepare_dir(ws)
        used = str(pooled.state("offline-0")["container"])
        script = (
            "cat node_modules/left-pad/index.js;"
            "touch node_modules/intruder 2>/dev/null && echo layer-written || echo layer-refused;"
            "touch node_modules/.vite/cache && echo scratch-ok"
        )
        result, lines = pooled.run(["sh", "-c", script], ws, workdir="front", node_modules=layer)
        assert result.ok, lines
        assert lines == ["module.exports = 'padded'", "layer-refused", "scratch-ok"]
        assert step_over(used), "the step did not run in the idle container"
        assert not (layer / ".vite" / "cache").exists()  # the scratch tmpfs was its own
    finally:
        workspace.remove(layer.parent)


def test_a_linked_app_folder_is_never_followed_on_the_host(
    pooled: Pooled, ws: Path, tmp_path: Path
) -> None:
    layer = read_only_layer(tmp_path)
    outside = tmp_path / "host-folder"
    (outside / "node_modules").mkdir(parents=True)
    (ws / "front").symlink_to(outside)  # what a hostile install script could leave
    idle = str(pooled.state("offline-0")["container"])
    try:
        with contextlib.suppress(SandboxError):  # Docker may refuse the mount point: as good
            pooled.run(["true"], ws, workdir="front", node_modules=layer)
        assert mounts_at(outside / "node_modules") == 0
        assert list((outside / "node_modules").iterdir()) == []
        assert step_over(idle)  # the idle container was given up, not reused
        assert pooled.state("offline-0")["ready"] is False
    finally:
        workspace.remove(layer.parent)


def test_nothing_a_step_started_outlives_it(pooled: Pooled, ws: Path) -> None:
    script = "(sleep 2; echo late > late.txt) & echo started"
    result, lines = pooled.run(["sh", "-c", script], ws)
    assert result.ok and lines == ["started"]  # it ended with its own process
    time.sleep(2.5)
    assert not (ws / "late.txt").exists()


def test_a_process_a_step_left_behind_without_its_output_dies_with_the_step(
    pooled: Pooled, ws: Path
) -> None:
    used = str(pooled.state("offline-0")["container"])
    script = "(sleep 30 &) >/dev/null 2>&1; echo started"  # the output ends; sleep lives on
    result, lines = pooled.run(["sh", "-c", script], ws)
    assert result.ok and lines == ["started"]
    assert container_gone(used)  # killed before the step's result came back


def test_memory_and_time_limits_hold_in_an_idle_container(pooled: Pooled, ws: Path) -> None:
    hog = "const a = []; for (;;) a.push(Buffer.alloc(1e7, 1));"
    result, _ = pooled.run(["node", "-e", hog], ws)
    assert result.oom_killed and not result.ok
    pooled.fill()
    used = str(pooled.state("offline-0")["container"])
    started = time.monotonic()
    slow = Limits(timeout_s=1, memory_mb=MEMORY_MB, cpus=pooled.limits.cpus)
    result, _ = pooled.run(["sleep", "30"], ws, limits=slow)
    assert result.timed_out and time.monotonic() - started < 10
    assert step_over(used)


def test_a_slot_whose_step_died_is_cleared(pooled: Pooled, ws: Path) -> None:
    step = Step("build", Phase.BUILDING, ["true"], False, ErrorCode.BUILD_FAILED)
    slot = pooled.pool.take(step, pooled.limits, "b0123456789abcd")
    assert slot is not None
    assert slot.container_id in containers_of(docker.from_env(), "b0123456789abcd")
    pooled.pool.mount_workspace(slot, ws, None)
    assert not pooled.pool.is_stale(slot.container_id, slot.name)  # in use: kept
    os.close(slot.lock_fd)  # the work-horse died mid-step
    assert pooled.pool.is_stale(slot.container_id, slot.name)  # the janitor removes it
    docker.from_env().api.remove_container(slot.container_id, force=True)
    assert mounts_at(slot.folder) == 0  # and the workspace is no longer bound there
    pooled.fill()
    fresh = str(pooled.state("offline-0")["container"])
    assert fresh != slot.container_id
    assert not pooled.pool.is_stale(fresh, "offline-0")


def test_a_committed_layer_is_read_only_on_the_host_and_in_the_step(
    pooled: Pooled, ws: Path, tmp_path: Path
) -> None:
    store = LayerStore(tmp_path / "layers", image_mb=16)
    key = "ab" * 20
    staging = store.new_staging(key)
    (staging / "node_modules" / "left-pad").mkdir(parents=True)
    (staging / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    layer = store.commit(key, staging, {})
    try:
        assert (layer / "left-pad" / "index.js").read_text() == "module.exports = 1\n"
        with pytest.raises(OSError) as caught:
            (layer / "intruder").write_text("x")  # not even root on the host writes there
        assert caught.value.errno == errno.EROFS
        meta = json.loads((tmp_path / "layers" / f"{key}.json").read_text())
        assert meta["size_bytes"] > 0 and meta["files"] >= 3
        used = str(pooled.state("offline-0")["container"])
        script = "cat node_modules/left-pad/index.js; touch node_modules/x 2>/dev/null || echo no"
        result, lines = pooled.run(["sh", "-c", script], ws, node_modules=layer)
        assert result.ok and lines[0] == "module.exports = 1" and lines[-1] == "no"
        assert step_over(used)
    finally:
        workspace.remove(layer.parent)
