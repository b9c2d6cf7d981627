"""The whole build pipeline through the fake sandbox: install strategies, failures, ends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import redis

from orchestrator.errors import SandboxError
from orchestrator.sandbox.fake import DIST_INDEX, OK, Script, StepCall, scripted
from tests.unit.builds.conftest import (
    LOCKED,
    NO_DEPENDENCIES,
    UNLOCKED,
    VITE,
    Kiln,
    lockfile,
    make_kiln,
    manifest,
)

BUILT = Script(writes=DIST_INDEX)
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"]


def argv(kiln: Kiln, name: str) -> list[list[str]]:
    """The argv of every call of the step called ``name``."""
    return [call.step.argv for call in kiln.sandbox.calls if call.name == name]


# ------------------------------------------------------------------- install strategies


def test_no_dependencies_installs_nothing(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["build"]
    assert build.cache == {"layer": "none"}
    assert "no dependencies: nothing to install" in kiln.log(build.id)
    assert kiln.ctx.storage.has_artifact(build.id)
    body = kiln.end(build.id)
    assert body["preview_url"] and body["error"] is None


def test_no_dependencies_still_runs_the_projects_install_scripts(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    files = {
        **NO_DEPENDENCIES,
        "package.json": manifest(scripts={"build": "x", "postinstall": "y"}),
    }
    build = kiln.build(files)
    assert build.status == "succeeded"
    assert kiln.sandbox.ran() == ["root-scripts", "build"]
    assert argv(kiln, "root-scripts") == [["sh", "-c", "npm run postinstall"]]


def test_layer_miss_then_hit(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    first = kiln.build(LOCKED)
    assert first.status == "succeeded"
    assert first.cache is not None and first.cache["layer"] == "miss"
    assert kiln.sandbox.ran() == ["layer-install", "build"]
    made = kiln.sandbox.calls[0]
    assert made.workspace != kiln.ctx.settings.work_dir / first.id  # a staging folder
    assert (made.workspace / "package.json").exists() is False  # committed: moved away
    build_call = kiln.sandbox.calls[1]
    assert build_call.node_modules is not None and build_call.node_modules.name == "node_modules"

    second = kiln.build(LOCKED)
    assert second.cache == {"layer": "hit", "layer_key": first.cache["layer_key"]}
    assert kiln.sandbox.ran() == ["layer-install", "build", "build"]  # no install at all
    assert "dependency layer hit" in kiln.log(second.id)
    assert kiln.redis.hget("kiln:unit:metrics:cache_hits_total", "cache=layer") == b"1"


def test_the_private_install_after_a_write_into_the_layer_gets_a_fresh_workspace(
    kiln: Kiln,
) -> None:
    """The build step (project code) plants a file and writes into the read-only layer; the
    private install after it (network) must not find what it left."""
    seen: list[bool] = []
    planting = Script(
        exit_code=1,
        lines=["Error: EROFS: read-only file system, open '/workspace/node_modules/x'"],
        writes={"planted.txt": "project code", "package.json": "{}"},
    )

    def look(call: StepCall) -> None:
        seen.append((call.workspace / "planted.txt").exists())
        assert json.loads((call.workspace / "package.json").read_text()) != {}

    kiln.script(scripted({"build": [planting, BUILT], "install": Script(effect=look)}))
    build = kiln.build(LOCKED)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "build", "install", "build"]
    assert seen == [False]


def test_layer_with_install_scripts_runs_a_rebuild_in_staging(kiln: Kiln) -> None:
    lock = json.loads(lockfile(VITE))
    lock["packages"]["node_modules/vite"]["hasInstallScript"] = True
    files = {**LOCKED, "package-lock.json": json.dumps(lock).encode()}
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(files)
    assert build.status == "succeeded"
    assert kiln.sandbox.ran() == ["layer-install", "scripts", "build"]
    assert kiln.sandbox.calls[0].workspace == kiln.sandbox.calls[1].workspace


def test_a_missing_lockfile_is_resolved_once_then_remembered(kiln: Kiln) -> None:
    resolve = Script(writes={"package-lock.json": lockfile(VITE)})
    kiln.script(scripted({"resolve": resolve, "build": BUILT}))
    first = kiln.build(UNLOCKED)
    assert first.status == "succeeded", first.error_message
    assert first.cache is not None
    assert (first.cache["layer"], first.cache["resolution"]) == ("miss", "miss")
    assert kiln.sandbox.ran() == ["resolve", "layer-install", "build"]
    second = kiln.build(UNLOCKED)
    assert second.cache is not None
    assert (second.cache["layer"], second.cache["resolution"]) == ("hit", "hit")
    assert kiln.sandbox.ran()[3:] == ["build"]


def test_a_project_with_its_own_npmrc_installs_privately(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build({**LOCKED, ".npmrc": b"legacy-peer-deps=true\n"})
    assert build.status == "succeeded"
    assert build.cache == {"layer": "private"}
    assert kiln.sandbox.ran() == ["install", "build"]
    assert argv(kiln, "install")[0][:6] == NPM_CI
    assert kiln.sandbox.calls[0].node_modules is None
    assert "not shared because the project has its own .npmrc" in kiln.log(build.id)


def test_layers_off_install_privately_with_npm_install_and_a_warning(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", cache_layers=False)
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(UNLOCKED)
    assert build.status == "succeeded"
    assert build.cache in ({}, None)
    assert kiln.sandbox.ran() == ["install", "scripts", "build"]  # no lockfile: scripts unknown
    assert argv(kiln, "install")[0][:2] == ["npm", "install"]
    assert "warning: no package-lock.json" in kiln.log(build.id)


def test_npm_ci_refusing_the_lockfile_is_retried_with_npm_install(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", cache_layers=False)
    refused = Script(exit_code=1, lines=["npm error code EUSAGE", "npm error not in sync"])
    kiln.script(scripted({"install": [refused, OK], "build": BUILT}))
    build = kiln.build(LOCKED)
    assert build.status == "succeeded", build.error_message
    installs = argv(kiln, "install")
    assert [a[:2] for a in installs] == [["npm", "ci"], ["npm", "install"]]
    assert "warning: npm ci refused the lockfile" in kiln.log(build.id)


def test_a_peer_conflict_is_retried_with_legacy_peer_deps(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", cache_layers=False)
    conflict = Script(exit_code=1, lines=["npm error code ERESOLVE"])
    kiln.script(scripted({"install": [conflict, conflict, OK], "build": BUILT}))
    build = kiln.build(LOCKED)
    installs = argv(kiln, "install")
    assert len(installs) == 2 and installs[1][-1] == "--legacy-peer-deps"
    assert build.status == "failed" and build.error_code == "install_failed"  # no loop


def test_a_layer_that_fails_to_install_fails_the_build(kiln: Kiln) -> None:
    e404 = Script(exit_code=1, lines=["npm error code E404", "npm error 404 Not Found - vite"])
    kiln.script(scripted({"layer-install": e404}))
    build = kiln.build(LOCKED)
    assert (build.status, build.error_code) == ("failed", "install_failed")
    assert build.error_message == "the build failed with exit code 1"
    assert build.error_diagnostics is not None
    assert "404 Not Found - vite" in json.dumps(build.error_diagnostics)
    assert not list((kiln.ctx.settings.layers_dir).glob("*.json"))  # nothing committed


WRITES_INTO_LAYER = Script(
    exit_code=1,
    lines=["Error: EROFS: read-only file system, open '/workspace/node_modules/.x/patch'"],
)


def test_install_scripts_writing_into_the_layer_fall_back_to_a_private_install(kiln: Kiln) -> None:
    files = {
        **LOCKED,
        "package.json": manifest(devDependencies=VITE, scripts={"build": "b", "postinstall": "p"}),
    }
    files["package-lock.json"] = lockfile(VITE)
    kiln.script(scripted({"root-scripts": WRITES_INTO_LAYER, "build": BUILT}))
    build = kiln.build(files)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "root-scripts", "install", "scripts", "build"]
    assert build.cache is not None and build.cache["layer"] == "private"
    assert kiln.sandbox.calls[-1].node_modules is None  # the layer was let go
    assert "shared read-only layer; installing its dependencies privately" in kiln.log(build.id)


def test_a_build_writing_into_the_layer_installs_privately_and_builds_again(kiln: Kiln) -> None:
    kiln.script(scripted({"build": [WRITES_INTO_LAYER, BUILT]}))
    build = kiln.build(LOCKED)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "build", "install", "build"]
    assert build.cache is not None and build.cache["layer"] == "private"


def test_a_read_only_error_without_a_layer_is_just_a_failure(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", cache_layers=False)
    kiln.script(scripted({"build": WRITES_INTO_LAYER}))
    build = kiln.build(LOCKED)
    assert (build.status, build.error_code) == ("failed", "build_failed")


# ------------------------------------------------------------------- failure classes

TS_ERROR = [
    "src/main.ts(3,7): error TS2322: Type 'number' is not assignable to type 'string'.",
]


@pytest.mark.parametrize(
    ("script", "code", "message"),
    [
        (Script(exit_code=2, lines=TS_ERROR), "build_failed", "exit code 2"),
        (Script(exit_code=137, timed_out=True), "timeout", "exceeded the 60 s time limit"),
        (Script(exit_code=137, oom_killed=True), "out_of_memory", "limit 512 MB"),
        (Script(exit_code=137), "sandbox_error", "killed from outside the build"),
        (Script(exit_code=1, lines=["ENOSPC: no space left on device"]), "disk_full", "512"),
    ],
)
def test_how_a_build_step_ends_is_the_builds_error(
    kiln: Kiln, script: Script, code: str, message: str
) -> None:
    kiln.script(scripted({"build": script}))
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", code)
    if code != "disk_full":
        assert message in (build.error_message or "")
    assert build.error_log_tail is not None
    body = kiln.end(build.id)
    assert body["error"]["code"] == code and body["preview_url"] is None
    assert body["error"]["diagnostics"] == build.error_diagnostics


def test_a_type_error_is_diagnosed_from_the_failed_steps_output(kiln: Kiln) -> None:
    kiln.script(scripted({"build": Script(exit_code=2, lines=TS_ERROR)}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.error_diagnostics is not None
    assert build.error_diagnostics["category"] == "type_error"
    assert build.error_diagnostics["items"][0]["file"] == "src/main.ts"


def test_a_failed_install_is_install_failed(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", cache_layers=False)
    kiln.script(scripted({"install": Script(exit_code=1, lines=["npm error code E404"])}))
    build = kiln.build(LOCKED)
    assert (build.error_code, build.error_message) == (
        "install_failed",
        "npm install failed with exit code 1",
    )


def test_too_much_log_output_is_output_too_large(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", max_log_mb=1)
    chatty = Script(lines=["x" * 1000] * 1100)  # 1.1 MB
    kiln.script(scripted({"build": chatty}))
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "output_too_large")
    assert "more than 1 MB of log output" in (build.error_message or "")


def test_too_many_output_files_is_output_too_large(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", max_dist_files=2)
    many = {**DIST_INDEX, "dist/a.js": "a", "dist/b.js": "b"}
    kiln.script(scripted({"build": Script(writes=many)}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.error_code == "output_too_large"


def _link_out_of_dist(call: StepCall) -> None:
    os.symlink("/etc/passwd", call.workspace / "dist" / "passwd")


def test_a_link_in_the_output_is_unsafe_output(kiln: Kiln) -> None:
    kiln.script(scripted({"build": Script(writes=DIST_INDEX, effect=_link_out_of_dist)}))
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "unsafe_output")
    assert not kiln.ctx.storage.has_artifact(build.id)


def test_no_dist_folder_is_build_failed(kiln: Kiln) -> None:
    build = kiln.build(NO_DEPENDENCIES)  # the build step writes nothing
    assert build.error_code == "build_failed"
    assert "wrote no index.html in dist/" in (build.error_message or "")
    assert kiln.sandbox.ran() == ["build", "output-dir"]  # Vite was asked for build.outDir


def _probe_says(folder: str) -> Script:
    return Script(lines=[f'kiln-output-dir: {{"outDir": "{folder}"}}'])


def test_the_fast_path_asks_vite_nothing(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.status == "succeeded" and kiln.sandbox.ran() == ["build"]
    assert "output_dir" not in kiln.end(build.id)


def test_build_out_dir_is_published_when_there_is_no_dist(kiln: Kiln) -> None:
    built = Script(writes={"www/index.html": "<p>www</p>", "www/a.js": "1"})
    kiln.script(scripted({"build": built, "output-dir": _probe_says("www")}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.status == "succeeded", build.error_message
    probe = kiln.sandbox.calls[-1]
    assert probe.name == "output-dir" and probe.step.network is False
    assert probe.limits.timeout_s <= 120
    stored = kiln.ctx.storage.manifest(build.id)
    assert stored is not None and sorted(stored.files) == ["a.js", "index.html"]
    assert "publishing www/ (build.outDir of the Vite config)" in kiln.log(build.id)
    assert kiln.end(build.id)["output_dir"] == "www"


def test_build_out_dir_outside_the_workspace_is_unsafe_output(kiln: Kiln) -> None:
    kiln.script(scripted({"build": OK, "output-dir": _probe_says("../../escape")}))
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "unsafe_output")
    assert "'../../escape', outside the project" in (build.error_message or "")
    assert not kiln.ctx.storage.has_artifact(build.id)


def _link_to_host(call: StepCall) -> None:
    os.symlink("/usr/share", call.workspace / "out")


def test_build_out_dir_through_a_link_is_unsafe_output(kiln: Kiln) -> None:
    kiln.script(
        scripted({"build": Script(effect=_link_to_host), "output-dir": _probe_says("out/doc")})
    )
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "unsafe_output")
    assert "goes through a link (out)" in (build.error_message or "")
    assert not kiln.ctx.storage.has_artifact(build.id)


KIT = {"@sveltejs/kit": "^2", "@sveltejs/adapter-auto": "^3"}
SVELTEKIT = {
    **NO_DEPENDENCIES,
    "package.json": manifest(devDependencies=KIT),
    "package-lock.json": lockfile(KIT),
    "svelte.config.js": b"export default {}",
}


def test_a_sveltekit_server_build_is_named_with_what_to_change(kiln: Kiln) -> None:
    server = Script(writes={".svelte-kit/output/server/index.js": "export {}"})
    probe = _probe_says(".svelte-kit/output/client")
    kiln.script(scripted({"build": server, "output-dir": probe}))
    build = kiln.build(SVELTEKIT)
    assert (build.status, build.error_code) == ("failed", "build_failed")
    message = build.error_message or ""
    assert ".svelte-kit/output/client/ (build.outDir of the Vite config)" in message
    assert "SvelteKit (adapter-auto)" in message and "@sveltejs/adapter-static" in message
    report = kiln.end(build.id)["error"]["diagnostics"]
    assert report["category"] == "config"
    assert report["items"][0]["file"] == "svelte.config.js"
    assert "@sveltejs/adapter-static" in report["items"][0]["message"]


def test_a_failing_probe_still_tries_the_frameworks_folder(kiln: Kiln) -> None:
    static = Script(writes={"build/index.html": "<p>static</p>"})
    kiln.script(scripted({"build": static, "output-dir": Script(exit_code=1)}))
    build = kiln.build(SVELTEKIT)
    assert build.status == "succeeded", build.error_message
    assert "reading build.outDir failed with exit code 1" in kiln.log(build.id)
    assert kiln.end(build.id)["output_dir"] == "build"


def test_a_nearly_full_server_disk_is_disk_full_before_anything_runs(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", min_free_disk_mb=10**12)
    build = kiln.build(NO_DEPENDENCIES)
    assert build.error_code == "disk_full" and kiln.sandbox.ran() == []
    kiln.end(build.id)


def _engine_fails(call: StepCall) -> Script:
    raise SandboxError(f"the {call.name} container failed: engine gone")


def _bug(call: StepCall) -> Script:
    raise RuntimeError("a bug")


def test_a_sandbox_failure_is_sandbox_error(kiln: Kiln) -> None:
    kiln.script(_engine_fails)
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "sandbox_error")
    assert build.error_message == "the build container failed: engine gone"
    kiln.end(build.id)


def test_a_bug_still_ends_the_build_as_an_internal_error(kiln: Kiln) -> None:
    kiln.script(_bug)
    build = kiln.build(NO_DEPENDENCIES)
    assert (build.status, build.error_code) == ("failed", "sandbox_error")
    assert build.error_message == "internal error: a bug"
    kiln.end(build.id)


def test_losing_redis_leaves_the_build_running_for_the_reconciler(kiln: Kiln) -> None:
    def redis_gone(call: StepCall) -> Script:
        raise redis.ConnectionError("Redis went away")

    kiln.script(redis_gone)
    build = kiln.record(NO_DEPENDENCIES)
    with pytest.raises(redis.ConnectionError):
        kiln.run(build.id)
    assert kiln.ctx.store.get(build.id).status == "running"
    assert kiln.ends(build.id) == []
    assert not (kiln.ctx.settings.work_dir / build.id).exists()  # cleaned up all the same


# ------------------------------------------------------------------- cancel


def test_cancel_during_a_step(kiln: Kiln) -> None:
    build = kiln.record(LOCKED)
    cancelling = Script(exit_code=137, effect=lambda call: kiln.cancel(call.build_id))
    kiln.script(scripted({"layer-install": cancelling}))
    ended = kiln.run(build.id)
    assert (ended.status, ended.error_code) == ("cancelled", "cancelled")
    assert ended.error_diagnostics is None
    assert kiln.sandbox.ran() == ["layer-install"]
    assert not list(kiln.ctx.settings.layers_dir.glob("*.json"))  # the half-made layer went
    assert kiln.end(build.id)["status"] == "cancelled"


def test_cancel_between_steps_runs_nothing_more(kiln: Kiln) -> None:
    build = kiln.record(LOCKED)
    kiln.script(scripted({"layer-install": Script(effect=lambda c: kiln.cancel(c.build_id))}))
    ended = kiln.run(build.id)
    assert ended.status == "cancelled"
    assert kiln.sandbox.ran() == ["layer-install"]


def test_cancel_before_the_claim_runs_nothing(kiln: Kiln) -> None:
    from orchestrator.service import cancel_build

    build = kiln.record(NO_DEPENDENCIES)
    cancel_build(kiln.ctx, build.id)
    ended = kiln.run(build.id)
    assert (ended.status, ended.error_code, ended.attempts) == ("cancelled", "cancelled", 0)
    assert kiln.sandbox.ran() == []
    assert kiln.end(build.id)["error"]["message"] == "the build was cancelled before it started"


# ------------------------------------------------------------------- the run itself


def test_phases_are_announced_in_order_and_once(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(LOCKED)
    assert kiln.phases(build.id) == ["preparing", "installing", "building", "publishing", "done"]
    statuses = [e.data["status"] for e in kiln.events(build.id) if e.event == "status"]
    assert statuses == ["running"] * 4 + ["succeeded"]
    assert [e.event for e in kiln.events(build.id)][-1] == "end"


def test_a_build_leaves_no_workspace_and_sweeps_its_containers(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(NO_DEPENDENCIES)
    assert not (kiln.ctx.settings.work_dir / build.id).exists()
    assert kiln.sandbox.removed == [build.id]
    assert kiln.ctx.storage.has_kept_source(build.id)  # for generations that edit it


def test_steps_get_the_builds_limits_and_a_shrinking_log_budget(kiln: Kiln) -> None:
    budgets: list[int | None] = []
    kiln.script(scripted({"build": BUILT}))
    original = kiln.sandbox.run_step

    def spy(step, **kw):  # type: ignore[no-untyped-def]
        budgets.append(kw["max_output_bytes"])
        return original(step, **kw)

    kiln.sandbox.run_step = spy  # type: ignore[method-assign]
    kiln.script(scripted({"root-scripts": Script(lines=["a" * 99]), "build": BUILT}))
    files = {**NO_DEPENDENCIES, "package.json": manifest(scripts={"build": "b", "install": "i"})}
    build = kiln.build(files)
    assert build.status == "succeeded"
    assert budgets[0] is not None and budgets[1] == budgets[0] - 100
    assert kiln.sandbox.calls[0].limits.memory_mb == 512


def test_a_build_another_worker_took_over_is_not_ended_twice(kiln: Kiln) -> None:
    build = kiln.record(NO_DEPENDENCIES)

    def taken_over(call: StepCall) -> None:  # the reconciler re-queued it meanwhile
        assert kiln.ctx.store.requeue_lost(call.build_id, 1)

    kiln.script(scripted({"build": Script(writes=DIST_INDEX, effect=taken_over)}))
    after = kiln.run(build.id)
    assert after.status == "queued"  # the new attempt owns the build now
    assert kiln.ends(build.id) == []


def test_a_drained_worker_puts_the_build_back(kiln: Kiln) -> None:
    from rq.suspension import suspend

    from orchestrator.builds.pipeline import BuildRun

    suspend(kiln.redis)
    build = kiln.record(NO_DEPENDENCIES)
    retry = BuildRun(build.id, kiln.ctx).run()
    assert retry is not None
    assert kiln.ctx.store.get(build.id).status == "queued"


# ---------------------------------------------------------- build settings (issue 14)


def test_a_submits_env_reaches_the_build_step_only_and_is_logged_by_name(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    from dataclasses import asdict

    from orchestrator.project.input import to_tar
    from orchestrator.records.models import Build
    from tests.unit.builds.conftest import LIMITS

    build = Build(
        project="app", limits=asdict(LIMITS), env={"VITE_API_URL": "https://secret.example"}
    )
    kiln.ctx.storage.write_source(build.id, to_tar(LOCKED))
    kiln.ctx.store.add(build)
    ended = kiln.run(build.id)
    assert ended.status == "succeeded", ended.error_message
    envs = {call.name: dict(call.step.env) for call in kiln.sandbox.calls}
    assert envs.pop("build") == {"VITE_API_URL": "https://secret.example"}
    assert envs and all(env == {} for env in envs.values()), envs  # install steps: none
    log = kiln.log(build.id)
    assert "build settings (env): VITE_API_URL" in log and "secret.example" not in log
    assert kiln.end(build.id)["env"] == ["VITE_API_URL"]


def test_output_lines_are_cleaned_before_the_tail_and_the_diagnosis(kiln: Kiln) -> None:
    coloured = '\x1b[31m/workspace/src/a.js:3:7: ERROR: \x1b[1mExpected ";"\x1b[22m\x1b[39m'
    kiln.script(scripted({"build": Script(exit_code=1, lines=[coloured])}))
    build = kiln.build(NO_DEPENDENCIES)
    assert build.status == "failed"
    assert "\x1b" not in (build.error_log_tail or "") and "\x1b" not in (build.error_message or "")
    assert build.error_message == 'src/a.js:3: Expected ";" (the build failed with exit code 1)'
