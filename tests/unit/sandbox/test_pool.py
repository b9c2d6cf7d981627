"""Unit tests for the pure parts of orchestrator.sandbox.pool, and its slot bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator.errors import ErrorCode, SandboxError
from orchestrator.records.models import Phase
from orchestrator.sandbox.pool import (
    IDLE_UID,
    ContainerPool,
    Slot,
    describe,
    exec_config,
    fingerprint,
    idle_step,
    kind_of,
    oom_killed,
)
from orchestrator.sandbox.runner import container_config, scratch_options
from orchestrator.sandbox.step import Limits, Step
from tests.unit.sandbox.test_runner import OPTIONS

LIMITS = Limits(timeout_s=600, memory_mb=2048, cpus=2.0)
BUILD = Step("build", Phase.BUILDING, ["npm", "run", "build"], False, ErrorCode.BUILD_FAILED)
INSTALL = Step("install", Phase.INSTALLING, ["npm", "ci"], True, ErrorCode.INSTALL_FAILED)


def make_config(step: Step, folder: Path) -> dict[str, Any]:
    return container_config(step, build_id="pool", limits=LIMITS, workspace=folder, options=OPTIONS)


def pool(root: Path, size: int = 2) -> ContainerPool:
    renames: list[tuple[str, str]] = []
    engine = SimpleNamespace(api=SimpleNamespace(rename=lambda c, n: renames.append((c, n))))
    return ContainerPool(
        engine,  # type: ignore[arg-type]  # only renames reach this engine
        root,
        size,
        LIMITS,
        make_config=make_config,
        image_id=lambda: "sha256:image",
    )


def ready(p: ContainerPool, name: str, container: str = "c1") -> None:
    kind = name.split("-")[0]
    expected = fingerprint(p.pool_config(kind, p.root / name), "sha256:image")
    p.root.mkdir(parents=True, exist_ok=True)
    state = {"ready": True, "container": container, "fingerprint": expected}
    (p.root / f"{name}.json").write_text(json.dumps(state))


def test_a_step_needs_the_idle_container_of_its_network() -> None:
    assert kind_of(BUILD) == "offline" and kind_of(INSTALL) == "online"
    assert not idle_step("offline").network and idle_step("online").network


def test_an_idle_container_binds_its_slot_with_propagation_and_runs_under_init(
    tmp_path: Path,
) -> None:
    config = pool(tmp_path).pool_config("offline", tmp_path / "offline-0")
    assert config["volumes"][str(tmp_path / "offline-0")] == {
        "bind": "/workspace",
        "mode": "rw,rslave",
    }
    assert config["init"] is True and config["network_mode"] == "none"
    assert config["labels"]["kiln.pool.slot"] == "offline-0"
    assert config["labels"]["kiln.build"] == "pool"
    assert config["user"] == f"{IDLE_UID}:{IDLE_UID}"  # never the steps' user
    online = pool(tmp_path).pool_config("online", tmp_path / "online-0")
    assert online["network_mode"] == "kiln-sandbox"
    assert "/cache/npm" in {v["bind"] for v in online["volumes"].values()}


def test_a_step_runs_in_the_idle_container_as_its_own_container_would() -> None:
    config = make_config(BUILD, Path("/var/kiln/work/b1"))
    got = exec_config(config)
    assert got["cmd"] == ["npm", "run", "build"]
    assert got["user"] == "10001:10001" and got["workdir"] == "/workspace"
    assert got["environment"] == config["environment"]


def test_the_fingerprint_follows_the_settings_and_the_image(tmp_path: Path) -> None:
    p = pool(tmp_path)
    config = p.pool_config("offline", tmp_path / "offline-0")
    assert fingerprint(config, "a") == fingerprint(dict(config), "a")
    assert fingerprint(config, "a") != fingerprint(config, "b")
    assert fingerprint(config, "a") != fingerprint({**config, "mem_limit": "1m"}, "a")


def test_the_kernels_oom_count_is_read_from_either_cgroup_version() -> None:
    v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n"
    v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\noom_group_kill 0\n"
    assert oom_killed(v1)
    assert not oom_killed(v2)
    assert oom_killed(v2.replace("oom_kill 0", "oom_kill 3"))
    assert not oom_killed("")


def test_scratch_folders_get_their_size_and_owner_as_mount_data() -> None:
    assert scratch_options("rw,nosuid,nodev,size=128m,uid=10001,gid=10001") == (
        "size=128m,uid=10001,gid=10001"
    )


def test_take_hands_out_a_ready_slot_once(tmp_path: Path) -> None:
    p = pool(tmp_path, size=2)
    ready(p, "offline-0", "c0")
    ready(p, "offline-1", "c1")
    first = p.take(BUILD, LIMITS, "b1")
    second = p.take(BUILD, LIMITS, "b2")
    assert first is not None and second is not None
    assert {first.container_id, second.container_id} == {"c0", "c1"}
    assert p.take(BUILD, LIMITS) is None  # both held
    assert json.loads((tmp_path / f"{first.name}.json").read_text())["ready"] is False


def test_take_refuses_other_limits_other_settings_and_a_disabled_pool(tmp_path: Path) -> None:
    p = pool(tmp_path, size=1)
    ready(p, "offline-0")
    assert p.take(BUILD, Limits(600, 1024, 2.0)) is None  # another memory limit
    assert p.take(INSTALL, LIMITS) is None  # no online slot is ready
    (tmp_path / "disabled").write_text("x")
    assert p.take(BUILD, LIMITS) is None
    (tmp_path / "disabled").unlink()
    state = json.loads((tmp_path / "offline-0.json").read_text())
    (tmp_path / "offline-0.json").write_text(json.dumps({**state, "fingerprint": "old"}))
    assert p.take(BUILD, LIMITS) is None  # made with other settings or another image
    assert pool(tmp_path, size=0).take(BUILD, LIMITS) is None


def test_doctor_reads_the_ready_slots_and_says_when_the_pool_is_off(tmp_path: Path) -> None:
    p = pool(tmp_path, size=2)
    ready(p, "offline-0")
    ready(p, "online-1")
    assert describe(tmp_path, 2).startswith("1 of 2 idle containers ready without network, 1 of 2")
    assert describe(tmp_path, 0).startswith("off")
    (tmp_path / "disabled").write_text("a mount made on this host did not reach the container\n")
    with pytest.raises(SandboxError, match="did not reach"):
        describe(tmp_path, 2)


def test_a_step_is_over_only_when_its_cgroup_holds_just_the_idle_processes(
    tmp_path: Path,
) -> None:
    procs = tmp_path / "cgroup.procs"
    slot = Slot("offline-0", tmp_path, "c1", -1, procs, frozenset({41, 42}))
    procs.write_text("41\n42\n")
    assert ContainerPool.is_quiet(slot)
    procs.write_text("41\n42\n97\n")  # something the step started still runs
    assert not ContainerPool.is_quiet(slot)
    procs.unlink()  # unreadable (gone): killed, to be sure
    assert not ContainerPool.is_quiet(slot)
    procs.write_text("41\n")
    assert not ContainerPool.is_quiet(Slot("offline-0", tmp_path, "c1", -1, procs))  # unknown
