import json

import pytest

from orchestrator.builds.plan import (
    build_step,
    classify_failure,
    mentions_disk_full,
    needs_lifecycle_scripts,
    plan_install,
)
from orchestrator.errors import InputError
from orchestrator.project.npm import check_buildable, lockfile_in_sync
from orchestrator.records.models import Phase, Status
from orchestrator.sandbox.step import Limits, clamp_limits

MANIFEST = {"dependencies": {"react": "^19.0.0"}, "devDependencies": {"vite": "^7.0.0"}}
DEFAULT = Limits(timeout_s=600, memory_mb=2048, cpus=2.0)
MAXIMUM = Limits(timeout_s=900, memory_mb=4096, cpus=2.0)


def lock_for(manifest: dict, **extra: object) -> dict:
    root = {k: v for k, v in manifest.items() if k.endswith("ependencies")}
    return {"lockfileVersion": 3, "packages": {"": root, **extra}}


def test_statuses_know_when_they_are_final() -> None:
    assert [s for s in Status if s.finished] == [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED]


def test_in_sync_lockfile_means_npm_ci() -> None:
    lock = json.dumps(lock_for(MANIFEST)).encode()
    plan = plan_install(MANIFEST, {"package-lock.json": lock})
    assert plan.step.argv[:2] == ["npm", "ci"]
    assert "--ignore-scripts" in plan.step.argv
    assert plan.step.network and plan.step.phase == Phase.INSTALLING
    assert plan.warnings == []


def test_stale_lockfile_means_npm_install_with_a_warning() -> None:
    stale = lock_for({"dependencies": {"react": "^18.0.0"}})
    plan = plan_install(MANIFEST, {"package-lock.json": json.dumps(stale).encode()})
    assert plan.step.argv[:2] == ["npm", "install"]
    assert "--ignore-scripts" in plan.step.argv
    assert "does not match" in plan.warnings[0]


def test_lockfile_v1_and_garbage_are_not_in_sync() -> None:
    assert not lockfile_in_sync(MANIFEST, {"lockfileVersion": 1, "dependencies": {}})
    plan = plan_install(MANIFEST, {"package-lock.json": b"<<<<<<< HEAD"})
    assert plan.step.argv[1] == "install"


def test_other_package_managers_fall_back_to_npm_with_a_warning() -> None:
    plan = plan_install(MANIFEST, {"bun.lockb": b"\x00"})
    assert plan.step.argv[1] == "install"
    assert "bun.lockb" in plan.warnings[0]


def test_no_lockfile_warns() -> None:
    assert "no package-lock.json" in plan_install(MANIFEST, {}).warnings[0]


def test_lifecycle_scripts_only_when_a_package_declares_them() -> None:
    plain = lock_for(MANIFEST, **{"node_modules/react": {"version": "19.0.0"}})
    scripted = lock_for(MANIFEST, **{"node_modules/esbuild": {"hasInstallScript": True}})
    assert not needs_lifecycle_scripts(MANIFEST, json.dumps(plain).encode())
    assert needs_lifecycle_scripts(MANIFEST, json.dumps(scripted).encode())
    assert needs_lifecycle_scripts(MANIFEST, None)
    patched = {**MANIFEST, "scripts": {"postinstall": "patch-package", "build": "vite build"}}
    assert needs_lifecycle_scripts(patched, json.dumps(plain).encode())
    prepare_only = {**MANIFEST, "scripts": {"prepare": "husky"}}
    assert not needs_lifecycle_scripts(prepare_only, json.dumps(plain).encode())


def test_build_step_uses_the_build_script_else_vite() -> None:
    with_script = build_step({"scripts": {"build": "tsc -b && vite build"}})
    assert with_script.argv == ["npm", "run", "build"]
    assert not with_script.network
    assert build_step({"devDependencies": {"vite": "7"}}).argv[-2:] == ["vite", "build"]


def test_unbuildable_projects_are_refused() -> None:
    check_buildable({"scripts": {"build": "x"}})
    check_buildable({"devDependencies": {"vite": "7"}})
    with pytest.raises(InputError, match="build"):
        check_buildable({"dependencies": {"react": "19"}})


def test_limits_default_lower_and_clamp() -> None:
    assert clamp_limits(None, DEFAULT, MAXIMUM) == DEFAULT
    lowered = clamp_limits({"timeout_s": 30, "memory_mb": 512}, DEFAULT, MAXIMUM)
    assert lowered == Limits(timeout_s=30, memory_mb=512, cpus=2.0)
    clamped = clamp_limits({"timeout_s": 10_000, "cpus": 64}, DEFAULT, MAXIMUM)
    assert clamped == Limits(timeout_s=900, memory_mb=2048, cpus=2.0)
    with pytest.raises(InputError):
        clamp_limits({"memory_mb": -1}, DEFAULT, MAXIMUM)


@pytest.mark.parametrize(
    ("step", "exit_code", "oom", "timed_out", "code"),
    [
        ("install", 1, False, False, "install_failed"),
        ("scripts", 1, False, False, "install_failed"),
        ("build", 2, False, False, "build_failed"),
        ("build", 137, True, False, "out_of_memory"),
        ("build", 137, False, True, "timeout"),
        ("build", 137, False, False, "sandbox_error"),  # killed from outside, not OOM
        ("install", 137, False, False, "sandbox_error"),
    ],
)
def test_classify_failure(step: str, exit_code: int, oom: bool, timed_out: bool, code: str) -> None:
    from orchestrator.sandbox.step import Step

    failure = {"install": "install_failed", "scripts": "install_failed"}.get(step, "build_failed")
    the_step = Step(step, Phase.BUILDING, ["x"], network=False, failure_code=failure)
    got, message = classify_failure(
        the_step, exit_code, oom_killed=oom, timed_out=timed_out, limits=DEFAULT
    )
    assert got == code
    assert message
    if code == "sandbox_error":
        assert "killed from outside the build" in message


def test_install_fallback_follows_npms_own_advice() -> None:
    from orchestrator.builds.plan import install_fallback

    ci = plan_install(MANIFEST, {"package-lock.json": json.dumps(lock_for(MANIFEST)).encode()})
    retry = install_fallback(ci.step, "npm error code EUSAGE\nnpm error `npm ci` can only ...")
    assert retry is not None
    as_install, reason = retry
    assert as_install.argv[:2] == ["npm", "install"] and "--ignore-scripts" in as_install.argv
    assert "npm install" in reason

    peers = install_fallback(as_install, "npm error code ERESOLVE\nnpm error ERESOLVE unable")
    assert peers is not None
    assert peers[0].argv[-1] == "--legacy-peer-deps" and "--ignore-scripts" in peers[0].argv
    assert install_fallback(peers[0], "npm error code ERESOLVE") is None  # no loop
    assert install_fallback(as_install, "npm error code E404 Not Found") is None


@pytest.mark.parametrize(
    ("lines", "full"),
    [
        (["npm ERR! code ENOSPC"], True),
        (["Error: No space left on device, write"], True),
        (["error TS2304: Cannot find name 'x'"], False),
        ([], False),
    ],
)
def test_mentions_disk_full(lines: list[str], full: bool) -> None:
    assert mentions_disk_full(lines) is full
