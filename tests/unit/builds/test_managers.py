"""Per-manager step planning, from tables (no Docker)."""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.builds import managers
from orchestrator.project.environment import (
    Environment,
    Manager,
    ManagerChoice,
    NodeChoice,
)
from orchestrator.records.models import Phase
from orchestrator.sandbox.step import Step


def env(manager: Manager, *, frozen: bool = True, major: int = 22) -> Environment:
    return Environment(
        NodeChoice(major, f"{major}.1.0", "default"),
        ManagerChoice(manager, "1.0.0", "default", "lock"),
        frozen,
    )


@pytest.mark.parametrize(
    ("manager", "frozen", "expected"),
    [
        (Manager.NPM, True, ["npm", "ci", "--ignore-scripts"]),
        (Manager.NPM, False, ["npm", "install", "--ignore-scripts"]),
        (Manager.PNPM, True, ["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"]),
        (Manager.PNPM, False, ["pnpm", "install", "--no-frozen-lockfile", "--ignore-scripts"]),
        (Manager.YARN_CLASSIC, True, ["yarn", "install", "--frozen-lockfile", "--ignore-scripts"]),
        (Manager.YARN_CLASSIC, False, ["yarn", "install", "--ignore-scripts"]),
        (Manager.YARN_BERRY, True, ["yarn", "install", "--immutable", "--mode=skip-build"]),
        (Manager.YARN_BERRY, False, ["yarn", "install", "--no-immutable", "--mode=skip-build"]),
        (Manager.BUN, True, ["bun", "install", "--frozen-lockfile", "--ignore-scripts"]),
        (Manager.BUN, False, ["bun", "install", "--ignore-scripts"]),
    ],
)
def test_install_is_frozen_when_asked_and_never_runs_scripts(
    manager: Manager, frozen: bool, expected: list[str]
) -> None:
    argv = managers.install_argv(env(manager, frozen=frozen))
    assert argv[: len(expected)] == expected


def test_pnpm_never_loads_the_projects_pnpmfile() -> None:
    assert "--ignore-pnpmfile" in managers.install_argv(env(Manager.PNPM))


@pytest.mark.parametrize("manager", list(Manager))
def test_path_picks_the_node_major_and_manager(manager: Manager) -> None:
    values = managers.step_env(env(manager, major=24), network=False, registry="r", proxy="p")
    path = values["PATH"].split(":")
    assert path[0] == "/opt/kiln/node/24/bin"
    assert path[1] == f"/opt/kiln/managers/{manager.value}/bin"


@pytest.mark.parametrize("manager", list(Manager))
def test_caches_are_named_only_in_install_containers(manager: Manager) -> None:
    offline = managers.step_env(env(manager), network=False, registry="r", proxy="p")
    online = managers.step_env(env(manager), network=True, registry="r", proxy="p")
    assert not any(v.startswith("/cache/") for v in offline.values())
    assert not any(v == "p" for v in offline.values())  # no proxy offline
    if manager != Manager.NPM:  # npm's cache is the sandbox's own setting
        assert managers.CACHE_DIRS[manager] in online.values()


def test_berry_ignores_the_projects_rc_file_and_yarn_path() -> None:
    values = managers.step_env(env(Manager.YARN_BERRY), network=True, registry="r/", proxy="p")
    again = managers.step_env(env(Manager.YARN_BERRY), network=True, registry="r/", proxy="p")
    name = values["YARN_RC_FILENAME"]
    assert re.fullmatch(r"(\.\./){64}tmp/\.kiln-yarnrc-[0-9a-f]{32}\.yml", name), name
    # yarn joins the name to the step's folder and each one above: all reach /tmp/<name>
    for folder in ("/workspace", "/workspace/apps/web", "/"):
        assert posixpath.normpath(posixpath.join(folder, name)) == "/" + name.lstrip("./")
    assert again["YARN_RC_FILENAME"] != name  # a fixed name could be planted in the workspace
    assert values["YARN_ENABLE_SCRIPTS"] == "false"  # exec: and git: dependencies run code
    offline = managers.step_env(env(Manager.YARN_BERRY), network=False, registry="r", proxy="")
    assert "YARN_ENABLE_SCRIPTS" not in offline  # the offline rebuild keeps yarn's own rule
    assert values["YARN_IGNORE_PATH"] == "1"
    assert values["YARN_NPM_REGISTRY_SERVER"] == "r"
    assert values["YARN_HTTPS_PROXY"] == "p"


def test_berry_gets_the_projects_compression_level_and_kilns_settings_win() -> None:
    settings = (("YARN_COMPRESSION_LEVEL", "mixed"), ("YARN_IGNORE_PATH", "0"))
    chosen = replace(env(Manager.YARN_BERRY), settings=settings)
    values = managers.step_env(chosen, network=True, registry="r/", proxy="p")
    assert values["YARN_COMPRESSION_LEVEL"] == "mixed"
    assert values["YARN_IGNORE_PATH"] == "1"
    assert managers.layer_settings(env(Manager.YARN_BERRY)) == {}  # layers keep their keys
    assert managers.layer_settings(chosen) != {}
    extended = replace(env(Manager.YARN_BERRY), rc='{"packageExtensions": {}}')
    assert managers.layer_settings(extended) == {"rc": extended.rc}


@pytest.mark.parametrize(
    ("manager", "output", "retries"),
    [
        (Manager.PNPM, "ERR_PNPM_OUTDATED_LOCKFILE  Cannot install", True),
        (Manager.YARN_CLASSIC, "error Your lockfile needs to be updated", True),
        (Manager.YARN_BERRY, "YN0028: The lockfile would have been modified", True),
        (Manager.BUN, "error: lockfile had changes, but lockfile is frozen", True),
        (Manager.PNPM, "ERR_PNPM_FETCH_404", False),
        (Manager.NPM, "EUSAGE", False),  # plan.install_fallback's job
    ],
)
def test_a_refused_frozen_install_falls_back_to_a_normal_one(
    manager: Manager, output: str, retries: bool
) -> None:
    chosen = env(manager)
    step = Step("install", Phase.INSTALLING, managers.install_argv(chosen), True, "install_failed")
    retry = managers.install_fallback(chosen, step, output)
    assert (retry is not None) is retries
    if retry is not None:
        assert retry[0].argv == managers.install_argv(env(manager, frozen=False))
        assert managers.install_fallback(chosen, retry[0], output) is None  # only once


def lock(**packages: dict[str, object]) -> bytes:
    return json.dumps({"lockfileVersion": 3, "packages": {"": {}, **packages}}).encode()


def test_npm_scripts_split_optional_packages_so_they_can_fail() -> None:
    raw = lock(
        **{
            "node_modules/esbuild": {"hasInstallScript": True},
            "node_modules/canvas": {"hasInstallScript": True, "optional": True},
            "node_modules/ms": {},
        }
    )
    step = managers.npm_lifecycle_step(raw)
    assert managers.splits_optional(step) and not step.network
    script = step.argv[2]
    assert "npm rebuild --foreground-scripts --no-audit --no-fund esbuild" in script
    assert "rm -rf -- node_modules/canvas" in script


def test_the_split_script_really_drops_a_failing_optional_package(tmp_path: Path) -> None:
    # Run the generated script with a fake npm that fails for canvas only.
    root = tmp_path
    (root / "bin").mkdir()
    fake = root / "bin" / "npm"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = canvas ] && exit 1; done; exit 0\n')
    fake.chmod(0o755)
    (root / "node_modules" / "canvas").mkdir(parents=True)
    (root / "node_modules" / "esbuild").mkdir(parents=True)
    raw = lock(
        **{
            "node_modules/esbuild": {"hasInstallScript": True},
            "node_modules/canvas": {"hasInstallScript": True, "optional": True},
        }
    )
    argv = managers.npm_lifecycle_step(raw).argv
    done = subprocess.run(
        argv, cwd=root, env={"PATH": f"{root / 'bin'}:/usr/bin:/bin"}, capture_output=True
    )
    assert done.returncode == 0
    assert b"optional dependency canvas failed" in done.stdout
    assert not (root / "node_modules" / "canvas").exists()
    assert (root / "node_modules" / "esbuild").exists()
    # A required package that fails still fails the step.
    raw = lock(
        **{
            "node_modules/canvas": {"hasInstallScript": True},
            "node_modules/esbuild": {"hasInstallScript": True, "optional": True},
        }
    )
    argv = managers.npm_lifecycle_step(raw).argv
    assert subprocess.run(argv, cwd=root, env={"PATH": f"{root / 'bin'}:/usr/bin:/bin"}).returncode


def test_lockfile_names_cannot_inject_shell() -> None:
    raw = lock(**{"node_modules/$(reboot)": {"hasInstallScript": True, "optional": True}})
    step = managers.npm_lifecycle_step(raw)
    assert "reboot" not in step.argv[-1]  # not a package name: never reaches the shell


@pytest.mark.parametrize(
    ("manifest", "workspace_yaml", "argv"),
    [
        ({}, None, None),  # pnpm 10: no dependency scripts unless allowed
        ({"pnpm": {"onlyBuiltDependencies": ["esbuild"]}}, None, ["esbuild"]),
        ({}, b"onlyBuiltDependencies:\n  - sharp\n  - esbuild\n", ["esbuild", "sharp"]),
        ({"pnpm": {"onlyBuiltDependencies": ["ok", "--workspace-root", "$(x)"]}}, None, ["ok"]),
    ],
)
def test_pnpm_runs_only_the_allowed_builds(
    manifest: dict[str, object], workspace_yaml: bytes | None, argv: list[str] | None
) -> None:
    step = managers.scripts_step(env(Manager.PNPM), manifest, None, workspace_yaml)
    if argv is None:
        assert step is None
    else:
        assert step is not None and step.argv[-len(argv) :] == argv and not step.network


def berry(version: str) -> Environment:
    return Environment(
        NodeChoice(22, "22.1.0", "default"),
        ManagerChoice(Manager.YARN_BERRY, version, "default", "lock"),
        True,
    )


@pytest.mark.parametrize(
    ("version", "manifest", "expected"),
    [
        ("4.18.1", {}, None),  # 4.14+: enableScripts is off by default
        ("4.14.0", {"dependenciesMeta": {"esbuild": {"built": False}}}, None),
        ("4.14.0", {"dependenciesMeta": {"esbuild@0.25.0": {"built": True}}}, "rebuild"),
        ("4.13.0", {}, "probe"),  # every dependency's scripts run: only when some has one
        ("3.8.7", {}, "probe"),
        ("not-a-version", {}, "probe"),
    ],
)
def test_yarn_berry_rebuilds_what_its_version_would_build(
    version: str, manifest: dict[str, object], expected: str | None
) -> None:
    step = managers.scripts_step(berry(version), manifest, None)
    if expected is None:
        assert step is None
        return
    assert step is not None and step.argv[-2:] == ["yarn", "rebuild"] and not step.network
    assert (step.argv[0] == "sh") is (expected == "probe")


def test_yarn_classic_rebuilds_only_when_the_probe_finds_a_script() -> None:
    step = managers.scripts_step(env(Manager.YARN_CLASSIC), {}, None)
    assert step is not None and step.argv[:2] == ["sh", "-c"]
    assert step.argv[-5:] == ["npm", "rebuild", "--foreground-scripts", "--no-audit", "--no-fund"]


@pytest.mark.parametrize(
    ("manifest", "names"),
    [({}, None), ({"trustedDependencies": ["esbuild", "bad name;"]}, "esbuild")],
)
def test_bun_runs_only_the_trusted_dependencies(
    manifest: dict[str, object], names: str | None
) -> None:
    step = managers.scripts_step(env(Manager.BUN), manifest, None)
    if names is None:
        assert step is None
    else:
        assert step is not None and step.argv[-1].endswith(f" {names}")


@pytest.mark.parametrize(
    ("manager", "command"),
    [(Manager.PNPM, "pnpm"), (Manager.YARN_BERRY, "yarn"), (Manager.BUN, "bun")],
)
def test_build_and_root_scripts_run_with_the_projects_manager(
    manager: Manager, command: str
) -> None:
    manifest = {"scripts": {"build": "vite build"}}
    assert managers.build_step(env(manager), manifest).argv == [command, "run", "build"]
    assert managers.build_step(env(manager), {}).argv[:3] == ["npx", "--no-install", "vite"]
    step = managers.root_scripts_step(env(manager), ["postinstall", "evil"])
    assert step.argv == ["sh", "-c", f"{command} run postinstall"] and not step.network


def test_yarn_lock_urls_move_to_kilns_registry() -> None:
    raw = b'  resolved "https://registry.yarnpkg.com/ms/-/ms-2.1.1.tgz#abc"\n'
    moved = managers.yarn_lock_for_registry(raw, "https://npm.corp.example/")
    assert moved == b'  resolved "https://npm.corp.example/ms/-/ms-2.1.1.tgz#abc"\n'


@pytest.mark.parametrize(
    ("integrity", "algo"),
    [
        ("sha512.abc123", "sha512"),
        ("sha224.00ff", "sha224"),
        (None, ""),
        ("md5.abc", ""),  # not a hash corepack writes: not checked, npm's integrity still is
        ("sha512.$(reboot)", ""),
    ],
)
def test_fetch_step_passes_only_a_wellformed_hash(integrity: str | None, algo: str) -> None:
    step = managers.fetch_step(Manager.PNPM, "9.15.9", integrity)
    assert step.network and step.argv[:2] == ["sh", "-c"]
    spec, got_algo = step.argv[4], step.argv[5]
    assert spec == "pnpm@9.15.9" and got_algo == algo
    assert "pnpm=pnpm/bin/pnpm.cjs" in step.argv


def test_fetched_manager_comes_first_on_path() -> None:
    values = managers.step_env(
        env(Manager.PNPM), network=False, registry="r", proxy="", fetched=True
    )
    assert values["PATH"].startswith(f"{managers.FETCHED_DIR}/bin:/opt/kiln/node/22/bin")


BUN_LOCK = b"""{
  "lockfileVersion": 1,
  "workspaces": { "": { "name": "p", "dependencies": { "esbuild": "^0.25.0", "ms": "^2" } } },
  "packages": {
    "esbuild": ["esbuild@0.25.0", "", { "hasInstallScript": true }, "sha512-AAAA"],
    "ms": ["ms@2.1.3", "", {}, "sha512-BBBB"],
    "sharp": ["sharp@github:lovell/sharp#abc", {}, "abc"],
    "x/bcrypt": ["bcrypt@5.1.1", "", {}, "sha512-CCCC"],
  },
}
"""
DEFAULTS = frozenset({"esbuild", "sharp", "bcrypt", "canvas"})


@pytest.mark.parametrize(
    ("manifest", "trusted"),
    [
        # the field, even an empty one, is exactly what bun trusts
        ({"trustedDependencies": ["ms"]}, ["ms"]),
        ({"trustedDependencies": []}, []),
        ({"trustedDependencies": "esbuild"}, []),  # not a list: none (never widened)
        # no field: the default list, as far as the lockfile installs it from a registry
        ({}, ["bcrypt", "esbuild"]),
    ],
)
def test_bun_trusts_the_field_else_its_defaults_in_the_lockfile(
    manifest: dict[str, object], trusted: list[str]
) -> None:
    assert managers.bun_trusted(manifest, BUN_LOCK, DEFAULTS) == trusted


def test_bun_lockb_leaves_the_installed_defaults_to_the_step() -> None:
    assert managers.bun_trusted({}, b"\x00bun-lockfile-format-v0\n", DEFAULTS) is None
    step = managers.scripts_step(env(Manager.BUN), {}, b"\x00binary", bun_defaults=DEFAULTS)
    assert step is not None and not step.network
    assert step.argv[:2] == ["sh", "-c"] and step.argv[4:] == sorted(DEFAULTS)


def test_bun_lockb_step_rebuilds_only_the_installed_defaults(tmp_path: Path) -> None:
    step = managers.scripts_step(env(Manager.BUN), {}, None, bun_defaults=DEFAULTS)
    assert step is not None
    (tmp_path / "node_modules" / "esbuild").mkdir(parents=True)
    (tmp_path / "node_modules" / "esbuild" / "package.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text('#!/bin/sh\necho "npm $*"\n')
    (bin_dir / "npm").chmod(0o755)
    run = subprocess.run(
        step.argv, cwd=tmp_path, capture_output=True, text=True, env={"PATH": f"{bin_dir}:/bin"}
    )
    assert run.returncode == 0 and run.stdout.strip().endswith("--no-fund esbuild")
    (tmp_path / "node_modules" / "esbuild" / "package.json").unlink()
    quiet = subprocess.run(step.argv, cwd=tmp_path, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stdout == ""  # none installed: nothing runs


@pytest.mark.parametrize(
    ("manifest", "lock", "names"),
    [
        ({}, BUN_LOCK, "bcrypt esbuild"),  # defaults that bun.lock installs
        ({}, b'{"packages": {"ms": ["ms@2.1.3", "", {}, "sha512-B"]}}', None),  # none of them
        ({"trustedDependencies": []}, BUN_LOCK, None),  # an empty field trusts none
        ({"trustedDependencies": ["ms"]}, BUN_LOCK, "ms"),
    ],
)
def test_bun_scripts_step_runs_only_when_a_trusted_package_is_installed(
    manifest: dict[str, object], lock: bytes, names: str | None
) -> None:
    step = managers.scripts_step(env(Manager.BUN), manifest, lock, bun_defaults=DEFAULTS)
    if names is None:
        assert step is None
    else:
        assert step is not None and step.argv[-1].endswith(f"--no-fund {names}")
