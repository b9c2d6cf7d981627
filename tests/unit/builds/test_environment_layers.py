"""pnpm, yarn and bun dependency layers through the fake sandbox: when a build gets one,
what the layer is made from and how, and that a second build mounts it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from orchestrator.builds.environment_layers import layer_recipe
from orchestrator.cache.keys import layer_key
from orchestrator.project.environment import Manager, choose_environment
from orchestrator.sandbox.fake import FAKE_OFFER, Script, StepCall, scripted
from orchestrator.sandbox.step import Toolchain
from tests.unit.builds.conftest import Kiln
from tests.unit.builds.test_environment_install import BUILT, calls, sample, toolenv

LOCKFILES = {
    "pnpm": "pnpm-lock.yaml",
    "yarn1": "yarn.lock",
    "berry": "yarn.lock",
    "bun": "bun.lock",
}


def staged_files(seen: dict[str, list[str]]) -> Script:
    """A layer-install that records which files its folder held."""

    def look(call: StepCall) -> None:
        seen[call.name] = sorted(p.name for p in call.workspace.iterdir())

    return Script(effect=look)


@pytest.mark.parametrize("folder", sorted(LOCKFILES))
def test_a_second_build_mounts_the_layer_the_first_made(kiln: Kiln, folder: str) -> None:
    seen: dict[str, list[str]] = {}
    kiln.script(scripted({"layer-install": staged_files(seen), "build": BUILT}))
    files = sample(folder, scripts={"build": "vite build", "postinstall": "node setup.js"})
    files["setup.js"] = b"require('fs').writeFileSync('x', '1')"
    first = kiln.build(files)
    assert first.status == "succeeded", first.error_message
    assert first.cache is not None and first.cache["layer"] == "miss"
    # only the layer's package.json and the lockfile: no project code in the layer
    assert seen["layer-install"] == sorted(["package.json", LOCKFILES[folder]])
    install = calls(kiln, "layer-install")[0]
    assert install.step.network and install.workspace != kiln.ctx.settings.work_dir / first.id
    assert not install.workspace.exists()  # the staging folder became the layer
    build = calls(kiln, "build")[0]
    assert (
        build.node_modules is not None
        and build.node_modules.parent.name == first.cache["layer_key"]
    )
    own = calls(kiln, "root-scripts")[0]  # the project's postinstall: its own container
    assert not own.step.network and own.node_modules == build.node_modules
    command = "yarn" if folder in ("yarn1", "berry") else folder
    assert own.step.argv == ["sh", "-c", f"{command} run postinstall"]

    before = len(kiln.sandbox.calls)
    second = kiln.build(files)
    assert second.status == "succeeded", second.error_message
    assert second.cache == {"layer": "hit", "layer_key": first.cache["layer_key"]}
    assert [c.name for c in kiln.sandbox.calls[before:]] == ["root-scripts", "build"]
    assert f"dependency layer hit {first.cache['layer_key'][:12]}" in kiln.log(second.id)


def test_a_pnpm_layer_runs_only_the_allowed_dependency_scripts_offline(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    yaml = b"onlyBuiltDependencies:\n  - sharp\n"
    files = {
        **sample("pnpm", pnpm={"onlyBuiltDependencies": ["esbuild"]}),
        "pnpm-workspace.yaml": yaml,
    }
    build = kiln.build(files)
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "scripts", "build"]
    scripts = calls(kiln, "scripts")[0]
    assert scripts.step.argv == ["pnpm", "rebuild", "--reporter=append-only", "esbuild", "sharp"]
    assert not scripts.step.network and scripts.node_modules is None  # in the staging folder
    assert toolenv(scripts)["npm_config_store_dir"] == "/tmp/.pnpm-store"  # not the store
    assert toolenv(calls(kiln, "layer-install")[0])["npm_config_store_dir"] == "/cache/pnpm"


def test_a_bun_layer_runs_only_trusted_scripts_and_none_without(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    assert kiln.build(sample("bun")).status == "succeeded"
    assert kiln.sandbox.ran() == ["layer-install", "build"]
    trusted = kiln.build(sample("bun", trustedDependencies=["sharp"]))
    assert trusted.status == "succeeded"
    scripts = calls(kiln, "scripts")[0]
    assert scripts.step.argv[-1].endswith("--no-fund sharp") and not scripts.step.network


def test_a_yarn_classic_layer_resolves_through_kilns_registry(tmp_path: Path) -> None:
    from tests.unit.builds.conftest import make_kiln

    kiln = make_kiln(tmp_path / "var", npm_registry="https://registry.example/")
    seen: dict[str, str] = {}

    def read_lock(call: StepCall) -> None:
        seen["lock"] = (call.workspace / "yarn.lock").read_text()

    kiln.script(scripted({"layer-install": Script(effect=read_lock), "build": BUILT}))
    build = kiln.build(sample("yarn1"))
    assert build.status == "succeeded", build.error_message
    assert "https://registry.example/ms/-/ms-2.1.1.tgz" in seen["lock"]
    assert kiln.sandbox.ran() == ["layer-install", "scripts", "build"]
    kiln.ctx.store.engine.dispose()


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({".npmrc": b"fund=false\n"}, "the project has its own .npmrc"),
        ({"pnpm-workspace.yaml": b"packages: ['apps/*']\n"}, "pnpm-workspace.yaml"),
    ],
)
def test_a_pnpm_project_that_changes_its_install_installs_privately(
    kiln: Kiln, extra: dict[str, bytes], said: str
) -> None:
    kiln.script(scripted({"build": BUILT}))
    build = kiln.build({**sample("pnpm"), **extra})
    assert build.status == "succeeded", build.error_message
    assert build.cache == {"layer": "private"}
    assert kiln.sandbox.ran() == ["install", "build"]
    assert calls(kiln, "build")[0].node_modules is None
    assert f"not shared because {said}" in kiln.log(build.id)


def test_a_stale_lockfile_installs_privately(kiln: Kiln) -> None:
    kiln.script(scripted({"build": BUILT}))
    files = sample("bun")
    manifest = json.loads(files["package.json"])
    manifest["dependencies"]["left-pad"] = "1.3.0"
    build = kiln.build({**files, "package.json": json.dumps(manifest).encode()})
    assert build.status == "succeeded", build.error_message
    assert build.cache == {"layer": "private"}
    assert "not shared because bun.lock does not match package.json" in kiln.log(build.id)


def test_a_lockfile_the_manager_refuses_is_never_made_into_a_layer(kiln: Kiln) -> None:
    refused = Script(exit_code=1, lines=["ERR_PNPM_OUTDATED_LOCKFILE  Cannot install"])
    kiln.script(
        scripted({"layer-install": refused, "install": [refused, Script()], "build": BUILT})
    )
    build = kiln.build(sample("pnpm"))
    assert build.status == "succeeded", build.error_message
    assert kiln.sandbox.ran() == ["layer-install", "install", "install", "build"]
    assert calls(kiln, "layer-install")[0].step.argv.count("--frozen-lockfile") == 1
    assert build.cache == {"layer": "private"}
    log = kiln.log(build.id)
    assert "not shared because pnpm refused the lockfile" in log
    assert "retrying with a normal pnpm install" in log  # the private install's own retry
    assert not list(kiln.ctx.settings.layers_dir.glob("*.json"))  # no layer was committed


def test_layer_keys_differ_by_node_major_and_manager_for_the_same_dependencies(
    kiln: Kiln,
) -> None:
    kiln.script(scripted({"build": BUILT}))
    on_22 = kiln.build(sample("pnpm"))
    on_20 = kiln.build({**sample("pnpm"), ".nvmrc": b"20\n"})
    npm_files = sample("npm")  # the same dependency, npm's lockfile (with its tarball URL)
    lock = json.loads(npm_files["package-lock.json"])
    lock["packages"]["node_modules/ms"]["resolved"] = "https://registry.npmjs.org/ms/-/ms-2.1.1.tgz"
    npm = kiln.build({**npm_files, "package-lock.json": json.dumps(lock).encode()})
    assert npm.cache is not None and npm.cache["layer"] == "miss"
    keys = [b.cache["layer_key"] for b in (on_22, on_20, npm) if b.cache]
    assert len(set(keys)) == 3
    assert on_20.cache is not None and on_20.cache["layer"] == "miss"


def test_the_layer_key_pins_the_manager_version_and_the_layers_package_json() -> None:
    base = Toolchain("sha256:img", "22.0.0+pnpm@10.34.9", "linux/amd64")
    argv = ["pnpm", "install", "--frozen-lockfile"]
    key = layer_key(b"lock", install_argv=argv, toolchain=base, manifest={"name": "a"})
    other_version = dataclasses.replace(base, node_version="22.0.0+pnpm@9.15.9")
    assert key != layer_key(
        b"lock", install_argv=argv, toolchain=other_version, manifest={"name": "a"}
    )
    assert key != layer_key(b"lock", install_argv=argv, toolchain=base, manifest={"name": "b"})
    assert key != layer_key(b"lock", install_argv=argv, toolchain=base)  # npm's: no manifest


def test_the_recipe_is_only_the_lockfile_and_a_scriptless_package_json() -> None:
    files = sample("pnpm", scripts={"build": "vite build", "postinstall": "node evil.js"})
    manifest = json.loads(files["package.json"])
    lockfiles = {"pnpm-lock.yaml": files["pnpm-lock.yaml"]}
    env = choose_environment(FAKE_OFFER, manifest, lockfiles, None)
    assert env.manager.manager == Manager.PNPM
    recipe = layer_recipe(
        env, manifest, lockfiles, sorted(files), workspace_yaml=None, registry="https://r/"
    )
    assert not isinstance(recipe, str)
    assert "scripts" not in recipe.manifest
    assert recipe.staged_lock == recipe.lock_bytes == files["pnpm-lock.yaml"]
    assert recipe.install.network and "--ignore-scripts" in recipe.install.argv
    assert recipe.scripts is None  # no onlyBuiltDependencies: no dependency script runs


def test_a_bun_layer_without_the_field_runs_the_defaults_its_lockfile_installs() -> None:
    def recipe(defaults: frozenset[str], **fields: object) -> tuple[object, str]:
        files = sample("bun", **fields)
        manifest = json.loads(files["package.json"])
        lockfiles = {"bun.lock": files["bun.lock"]}
        env = choose_environment(FAKE_OFFER, manifest, lockfiles, None)
        made = layer_recipe(
            env,
            manifest,
            lockfiles,
            sorted(files),
            workspace_yaml=None,
            registry="https://r/",
            bun_defaults=defaults,
        )
        assert not isinstance(made, str)
        base = Toolchain(image_id="sha256:a", node_version="22", platform="linux/amd64")
        scripts = made.scripts.argv if made.scripts is not None else None
        key = layer_key(
            made.lock_bytes,
            install_argv=made.install.argv,
            toolchain=base,
            manifest=made.manifest,
            scripts_argv=scripts,
        )
        return scripts, key

    # the sample's bun.lock installs ms and nothing else
    assert recipe(frozenset({"esbuild"}))[0] is None  # no default-trusted package installed
    scripts, key = recipe(frozenset({"esbuild", "ms"}))
    assert scripts is not None and scripts[-1].endswith("--no-fund ms")
    assert key != recipe(frozenset({"esbuild"}))[1]  # another trusted set, another layer
    assert recipe(frozenset({"ms"}), trustedDependencies=[])[0] is None  # the field wins
