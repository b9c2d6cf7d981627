"""Build environments through the fake sandbox: each package manager's private install
route (layers off: ``private``; their layers are in ``test_environment_layers``), the chosen
Node on every step, a refused frozen lockfile, a fetched packageManager version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Kiln]:
    """An in-process Kiln with dependency layers off: every build installs privately."""
    made = make_kiln(tmp_path / "var", cache_layers=False)
    yield made
    made.ctx.store.engine.dispose()


def calls(kiln: Kiln, name: str) -> list[StepCall]:
    return [call for call in kiln.sandbox.calls if call.name == name]


def toolenv(call: StepCall) -> dict[str, str]:
    return dict(call.step.toolenv)


def test_a_pnpm_project_installs_frozen_with_pnpm_then_its_allowed_scripts_offline(
    private: Kiln,
) -> None:
    private.script(scripted({"build": BUILT}))
    files = sample(
        "pnpm",
        pnpm={"onlyBuiltDependencies": ["esbuild"]},
        scripts={"build": "vite build", "postinstall": "node setup.js"},
    )
    build = private.build(files)
    assert build.status == "succeeded", build.error_message
    assert private.sandbox.ran() == ["install", "scripts", "root-scripts", "build"]
    install = calls(private, "install")[0]
    assert install.step.argv[:4] == ["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"]
    assert install.step.network and install.node_modules is None  # private: no shared layer
    scripts = calls(private, "scripts")[0]
    assert scripts.step.argv == ["pnpm", "rebuild", "--reporter=append-only", "esbuild"]
    assert not scripts.step.network
    assert calls(private, "root-scripts")[0].step.argv == ["sh", "-c", "pnpm run postinstall"]
    assert calls(private, "build")[0].step.argv == ["pnpm", "run", "build"]
    for call in private.sandbox.calls:  # every step runs the chosen Node with pnpm first on PATH
        assert toolenv(call)["PATH"] == step_path(22, Manager.PNPM)
    assert toolenv(install)["npm_config_store_dir"] == "/cache/pnpm"
    assert toolenv(scripts)["npm_config_store_dir"] == "/tmp/.pnpm-store"  # offline: no store
    assert not build.cache  # layers off: no layer looked up
    body = private.end(build.id)
    pinned = FAKE_OFFER.managers[Manager.PNPM]
    assert body["environment"] == {"node": "22.0.0", "package_manager": f"pnpm@{pinned}"}
    log = private.log(build.id)
    assert f"environment: Node 22.0.0 (default), pnpm@{pinned} (pnpm-lock.yaml)" in log


def test_a_pnpm_project_without_allowed_builds_runs_no_dependency_scripts(private: Kiln) -> None:
    private.script(scripted({"build": BUILT}))
    build = private.build(sample("pnpm"))
    assert build.status == "succeeded", build.error_message
    assert private.sandbox.ran() == ["install", "build"]


def test_a_yarn_classic_project_resolves_through_kilns_registry(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var", npm_registry="https://registry.example/", cache_layers=False)
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


def test_yarn_refusing_a_stale_lockfile_is_retried_as_a_normal_install(private: Kiln) -> None:
    refused = Script(exit_code=1, lines=["error Your lockfile needs to be updated."])
    private.script(scripted({"install": [refused, Script()], "build": BUILT}))
    build = private.build(sample("yarn1"))
    assert build.status == "succeeded", build.error_message
    first, second = (call.step.argv for call in calls(private, "install"))
    assert "--frozen-lockfile" in first and "--frozen-lockfile" not in second
    assert "retrying with a normal yarn install" in private.log(build.id)


def test_a_yarn_berry_project_skips_builds_then_rebuilds_offline(private: Kiln) -> None:
    private.script(scripted({"build": BUILT}))
    build = private.build(sample("berry"))
    assert build.status == "succeeded", build.error_message
    install = calls(private, "install")[0]
    assert install.step.argv == ["yarn", "install", "--immutable", "--mode=skip-build"]
    assert toolenv(install)["YARN_RC_FILENAME"] != ".yarnrc.yml"  # the project's is not read
    assert calls(private, "scripts")[0].step.argv[-2:] == ["yarn", "rebuild"]
    assert toolenv(install)["PATH"] == step_path(22, Manager.YARN_BERRY)


def test_a_berry_project_s_extensions_reach_every_yarn_step_as_its_own_rc_file(
    private: Kiln,
) -> None:
    private.script(scripted({"build": BUILT}))
    rc = b'packageExtensions:\n  "ms@*":\n    dependencies:\n      x: "1"\n'
    build = private.build(sample("berry") | {".yarnrc.yml": rc})
    assert build.status == "succeeded", build.error_message
    steps = [call.step for call in private.sandbox.calls]
    assert [step.name for step in steps] == ["install", "scripts", "build"]
    names = set()
    for step in steps:
        assert step.tmp_file is not None, step.name
        name, text = step.tmp_file
        assert json.loads(text) == {"packageExtensions": {"ms@*": {"dependencies": {"x": "1"}}}}
        assert dict(step.toolenv)["YARN_RC_FILENAME"].endswith(f"/tmp/{name}")
        names.add(name)
    assert len(names) == 3  # each step its own name


def test_a_bun_project_runs_only_its_trusted_dependencies_scripts(private: Kiln) -> None:
    private.script(scripted({"build": BUILT}))
    build = private.build(sample("bun", trustedDependencies=["sharp"]))
    assert build.status == "succeeded", build.error_message
    assert private.sandbox.ran() == ["install", "scripts", "build"]
    install = calls(private, "install")[0]
    assert install.step.argv[:3] == ["bun", "install", "--frozen-lockfile"]
    assert toolenv(install)["BUN_INSTALL_CACHE_DIR"] == "/cache/bun"
    scripts = calls(private, "scripts")[0]
    assert scripts.step.argv[-1].endswith(
        "npm rebuild --foreground-scripts --no-audit --no-fund sharp"
    )
    assert toolenv(scripts)["BUN_INSTALL_CACHE_DIR"] == "/tmp/.bun-cache"
    assert calls(private, "build")[0].step.argv == ["bun", "run", "build"]


def test_a_failed_bun_install_names_bun(private: Kiln) -> None:
    private.script(scripted({"install": Script(exit_code=1, lines=["error: boom"])}))
    build = private.build(sample("bun"))
    assert build.status == "failed"
    assert build.error_code == "install_failed"
    assert "bun install failed with exit code 1" in (build.error_message or "")


def test_every_step_runs_the_node_the_project_asks_for(private: Kiln) -> None:
    private.script(scripted({"build": BUILT}))
    build = private.build({**sample("pnpm"), ".nvmrc": b"20\n"})
    assert build.status == "succeeded", build.error_message
    assert {toolenv(call)["PATH"] for call in private.sandbox.calls} == {
        step_path(20, Manager.PNPM)
    }
    assert private.end(build.id)["environment"]["node"] == "20.0.0"
    assert "Node 20.0.0 (.nvmrc)" in private.log(build.id)


def test_a_package_manager_version_the_image_lacks_is_fetched_once_and_mounted(
    private: Kiln,
) -> None:
    fetched = Script(writes={"bin/pnpm": "#!/bin/sh\n"})
    private.script(scripted({"fetch-manager": fetched, "build": BUILT}))
    files = sample("pnpm", packageManager="pnpm@9.15.9")
    first = private.build(files)
    assert first.status == "succeeded", first.error_message
    assert private.sandbox.ran() == ["fetch-manager", "install", "build"]
    fetch = calls(private, "fetch-manager")[0]
    assert fetch.step.tools is None and fetch.step.network
    assert "pnpm@9.15.9" in fetch.step.argv
    folder = private.ctx.settings.var_dir.resolve() / "cache" / "managers" / "pnpm@9.15.9"
    install = calls(private, "install")[0]
    assert install.step.tools == folder and (folder / "bin" / "pnpm").is_file()
    assert toolenv(install)["PATH"].startswith("/opt/kiln/fetched/bin:")

    second = private.build(files)
    assert second.status == "succeeded", second.error_message
    assert private.sandbox.ran().count("fetch-manager") == 1  # the folder is reused
    assert "pnpm@9.15.9 ready" in private.log(second.id)
    assert private.end(second.id)["environment"]["package_manager"] == "pnpm@9.15.9"


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
