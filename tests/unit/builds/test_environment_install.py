"""Build environments through the fake sandbox: each package manager's install route, the
chosen Node on every step, a refused frozen lockfile, a fetched packageManager version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.project.environment import Manager
from orchestrator.project.input import Files
from orchestrator.sandbox.fake import DIST_INDEX, FAKE_OFFER, Script, StepCall, scripted
from orchestrator.sandbox.image.toolchains import step_path
from tests.unit.builds.conftest import LOCKED, Kiln, make_kiln

BUILT = Script(writes=DIST_INDEX)
SAMPLES = Path(__file__).resolve().parents[1] / "project" / "samples"
INDEX = {"index.html": b"<p>hi</p>"}


def sample(folder: str, **fields: Any) -> Files:
    """A sample project made by the real manager (tests/unit/project/samples), with a build
    script and ``fields`` added to its package.json (the dependencies stay in sync)."""
    files: Files = {p.name: p.read_bytes() for p in (SAMPLES / folder).iterdir()}
    package = json.loads(files["package.json"]) | {"scripts": {"build": "vite build"}} | fields
    return {**files, "package.json": json.dumps(package).encode(), **INDEX}


def calls(kiln: Kiln, name: str) -> list[StepCall]:
    return [call for call in kiln.sandbox.calls if call.name == name]


def toolenv(call: StepCall) -> dict[str, str]:
    return dict(call.step.toolenv)


def test_a_pnpm_project_installs_frozen_with_pnpm_then_its_allowed_scripts_offline(
    kiln: Kiln,
) -> None:
    kiln.script(scripted({"build": BUILT}))
    files = sample(
        "pnpm",
        pnpm={"onlyBuiltDependencies": ["esbuild"]},
        scripts={"build": "vite build", "postinstall": "node setup.js"},
    )
    build = kiln.build(files)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["install", "scripts", "root-scripts", "build"]
    install = calls(kiln, "install")[0]
    assert install.step.argv[:4] == ["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"]
    assert install.step.network and install.node_modules is None  # private: no shared layer
    scripts = calls(kiln, "scripts")[0]
    assert scripts.step.argv == ["pnpm", "rebuild", "--reporter=append-only", "esbuild"]
    assert not scripts.step.network
    assert calls(kiln, "root-scripts")[0].step.argv == ["sh", "-c", "pnpm run postinstall"]
    assert calls(kiln, "build")[0].step.argv == ["pnpm", "run", "build"]
    for call in kiln.sandbox.calls:  # every step runs the chosen Node with pnpm first on PATH
        assert toolenv(call)["PATH"] == step_path(22, Manager.PNPM)
    assert toolenv(install)["npm_config_store_dir"] == "/cache/pnpm"
    assert toolenv(scripts)["npm_config_store_dir"] == "/tmp/.pnpm-store"  # offline: no store
    assert build.cache == {"layer": "private"}
    body = kiln.end(build.id)
    pinned = FAKE_OFFER.managers[Manager.PNPM]
    assert body["environment"] == {"node": "22.0.0", "package_manager": f"pnpm@{pinned}"}
    log = kiln.log(build.id)
    assert f"environment: Node 22.0.0 (default), pnpm@{pinned} (pnpm-lock.yaml)" in log
    assert "not shared for pnpm projects yet" in log


def test_a_pnpm_project_without_allowed_builds_runs_no_dependency_scripts(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(sample("pnpm"))
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["install", "build"]


def test_a_yarn_classic_project_resolves_through_kilns_registry(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", npm_registry="https://registry.example/")
    seen: dict[str, str] = {}

    def read_lock(call: StepCall) -> None:
        seen["yarn.lock"] = (call.workspace / "yarn.lock").read_text()

    kiln.script(scripted({"install": Script(effect=read_lock), "build": BUILT}))
    build = kiln.build(sample("yarn1"))
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["install", "scripts", "build"]  # yarn 1 runs every script
    install = calls(kiln, "install")[0]
    assert install.step.argv[:3] == ["yarn", "install", "--frozen-lockfile"]
    assert "--ignore-scripts" in install.step.argv
    assert toolenv(install)["YARN_REGISTRY"] == "https://registry.example/"
    assert toolenv(install)["YARN_CACHE_FOLDER"] == "/cache/yarn"
    assert "https://registry.example/ms/-/ms-2.1.1.tgz" in seen["yarn.lock"]
    assert "registry.yarnpkg.com" not in seen["yarn.lock"]
    assert calls(kiln, "build")[0].step.argv == ["yarn", "run", "build"]
    assert kiln.end(build.id)["environment"]["package_manager"] == "yarn@1.22.22"


def test_yarn_refusing_a_stale_lockfile_is_retried_as_a_normal_install(kiln: Kiln) -> None:
    refused = Script(exit_code=1, lines=["error Your lockfile needs to be updated."])
    kiln.script(scripted({"install": [refused, Script()], "build": BUILT}))
    build = kiln.build(sample("yarn1"))
    assert build.status == "succeeded", build.error_message
    first, second = (call.step.argv for call in calls(kiln, "install"))
    assert "--frozen-lockfile" in first and "--frozen-lockfile" not in second
    assert "retrying with a normal yarn install" in kiln.log(build.id)


def test_a_yarn_berry_project_skips_builds_then_rebuilds_offline(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(sample("berry"))
    assert build.status == "succeeded", build.error_message
    install = calls(kiln, "install")[0]
    assert install.step.argv == ["yarn", "install", "--immutable", "--mode=skip-build"]
    assert toolenv(install)["YARN_RC_FILENAME"] != ".yarnrc.yml"  # the project's is not read
    assert calls(kiln, "scripts")[0].step.argv == ["yarn", "rebuild"]
    assert toolenv(install)["PATH"] == step_path(22, Manager.YARN_BERRY)


def test_a_bun_project_runs_only_its_trusted_dependencies_scripts(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build(sample("bun", trustedDependencies=["sharp"]))
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["install", "scripts", "build"]
    install = calls(kiln, "install")[0]
    assert install.step.argv[:3] == ["bun", "install", "--frozen-lockfile"]
    assert toolenv(install)["BUN_INSTALL_CACHE_DIR"] == "/cache/bun"
    scripts = calls(kiln, "scripts")[0]
    assert scripts.step.argv[-1].endswith(
        "npm rebuild --foreground-scripts --no-audit --no-fund sharp"
    )
    assert toolenv(scripts)["BUN_INSTALL_CACHE_DIR"] == "/tmp/.bun-cache"
    assert calls(kiln, "build")[0].step.argv == ["bun", "run", "build"]


def test_a_failed_bun_install_names_bun(kiln: Kiln) -> None:
    kiln.script(scripted({"install": Script(exit_code=1, lines=["error: boom"])}))
    build = kiln.build(sample("bun"))
    assert build.status == "failed"
    assert build.error_code == "install_failed"
    assert "bun install failed with exit code 1" in (build.error_message or "")


def test_every_step_runs_the_node_the_project_asks_for(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build({**sample("pnpm"), ".nvmrc": b"20\n"})
    assert build.status == "succeeded", build.error_message
    assert {toolenv(call)["PATH"] for call in kiln.sandbox.calls} == {step_path(20, Manager.PNPM)}
    assert kiln.end(build.id)["environment"]["node"] == "20.0.0"
    assert "Node 20.0.0 (.nvmrc)" in kiln.log(build.id)


def test_a_package_manager_version_the_image_lacks_is_fetched_once_and_mounted(
    kiln: Kiln,
) -> None:
    fetched = Script(writes={"bin/pnpm": "#!/bin/sh\n"})
    kiln.script(scripted({"fetch-manager": fetched, "build": BUILT}))
    files = sample("pnpm", packageManager="pnpm@9.15.9")
    first = kiln.build(files)
    assert first.status == "succeeded", first.error_message
    assert kiln.sandbox.ran() == ["fetch-manager", "install", "build"]
    fetch = calls(kiln, "fetch-manager")[0]
    assert fetch.step.tools is None and fetch.step.network
    assert "pnpm@9.15.9" in fetch.step.argv
    folder = kiln.ctx.settings.var_dir.resolve() / "cache" / "managers" / "pnpm@9.15.9"
    install = calls(kiln, "install")[0]
    assert install.step.tools == folder and (folder / "bin" / "pnpm").is_file()
    assert toolenv(install)["PATH"].startswith("/opt/kiln/fetched/bin:")

    second = kiln.build(files)
    assert second.status == "succeeded", second.error_message
    assert kiln.sandbox.ran().count("fetch-manager") == 1  # the folder is reused
    assert "pnpm@9.15.9 ready" in kiln.log(second.id)
    assert kiln.end(second.id)["environment"]["package_manager"] == "pnpm@9.15.9"


def test_an_npm_project_keeps_npms_own_route(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build({**LOCKED, ".nvmrc": b"24\n"})
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "build"]  # a shared layer, as before
    assert calls(kiln, "build")[0].step.argv == ["npm", "run", "build"]
    assert toolenv(calls(kiln, "layer-install")[0])["PATH"] == step_path(24, Manager.NPM)
    key = build.cache["layer_key"] if build.cache else None
    again = kiln.build(LOCKED)  # the same lockfile on Node 22: another layer
    assert again.cache is not None and again.cache["layer"] == "miss"
    assert again.cache["layer_key"] != key
