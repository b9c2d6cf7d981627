"""Which pnpm, yarn and bun lockfiles and projects may share a layer; the layer's package.json.

The good lockfiles are the ones the real managers wrote (tests/unit/project/samples); the
bad ones are those samples with one entry changed the way each manager writes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cache.manager_layers import layer_manifest, lockfile_refusal, project_refusal
from orchestrator.project.environment import Manager
from orchestrator.project.lockfiles import load_jsonc

SAMPLES = Path(__file__).resolve().parents[1] / "project" / "samples"


def sample(folder: str, name: str) -> bytes:
    return (SAMPLES / folder / name).read_bytes()


@pytest.mark.parametrize(
    ("manager", "folder", "lockfile"),
    [
        (Manager.PNPM, "pnpm", "pnpm-lock.yaml"),
        (Manager.YARN_CLASSIC, "yarn1", "yarn.lock"),
        (Manager.YARN_BERRY, "berry", "yarn.lock"),
        (Manager.BUN, "bun", "bun.lock"),
    ],
)
def test_the_managers_own_registry_lockfiles_may_be_shared(
    manager: Manager, folder: str, lockfile: str
) -> None:
    assert lockfile_refusal(manager, lockfile, sample(folder, lockfile)) is None


PNPM_TARBALL = b"""lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      ms:
        specifier: https://example.com/ms.tgz
        version: https://example.com/ms.tgz
packages:
  ms@https://example.com/ms.tgz:
    resolution: {tarball: https://example.com/ms.tgz}
"""
PNPM_WORKSPACE = b"""lockfileVersion: '9.0'
importers:
  .: {}
  packages/a:
    dependencies: {}
"""
PNPM_LINK = b"""lockfileVersion: '9.0'
importers:
  .:
    dependencies:
      lib:
        specifier: file:../lib
        version: link:../lib
"""


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (PNPM_TARBALL, "not a registry"),
        (PNPM_WORKSPACE, "single root importer"),
        (PNPM_LINK, "lib is not a registry package"),
        (b"- not: a mapping", "not a YAML mapping"),
    ],
)
def test_pnpm_lockfiles_outside_the_registry_are_refused(raw: bytes, said: str) -> None:
    refusal = lockfile_refusal(Manager.PNPM, "pnpm-lock.yaml", raw)
    assert refusal is not None and said in refusal


def test_yarn_classic_entries_off_the_registry_or_unhashed_are_refused() -> None:
    good = sample("yarn1", "yarn.lock").decode()
    git = (
        good
        + '\nlib@git+https://host/lib.git:\n  version "1.0.0"\n  resolved "git+https://host/lib.git#abc"\n'
    )
    assert "lib@git+https://host/lib.git" in (
        lockfile_refusal(Manager.YARN_CLASSIC, "yarn.lock", git.encode()) or ""
    )
    unhashed = "\n".join(line for line in good.splitlines() if "integrity" not in line)
    refusal = lockfile_refusal(Manager.YARN_CLASSIC, "yarn.lock", unhashed.encode())
    assert refusal is not None and "no integrity hash" in refusal
    url = good.replace("/-/", "/tarballs/")
    assert lockfile_refusal(Manager.YARN_CLASSIC, "yarn.lock", url.encode()) is not None


def test_berry_accepts_yarns_builtin_patches_but_not_a_project_patch_or_workspace() -> None:
    good = sample("berry", "yarn.lock").decode()
    builtin = (
        good + '\n"resolve@patch:resolve@npm%3A^1.22.1#optional!builtin<compat/resolve>":\n'
        '  version: 1.22.8\n  resolution: "resolve@patch:resolve@npm%3A1.22.8#optional!builtin'
        '<compat/resolve>::version=1.22.8&hash=c3c19d"\n  checksum: 10c0/abc\n'
    )
    # yarn's own patch of resolve (same bytes for everyone), as yarn 4 writes it
    assert lockfile_refusal(Manager.YARN_BERRY, "yarn.lock", builtin.encode()) is None
    own = good + (
        '\n"left-pad@patch:left-pad@npm%3A1.3.0#./.yarn/patches/left-pad.patch":\n'
        '  version: 1.3.0\n  resolution: "left-pad@patch:left-pad@npm%3A1.3.0'
        '#./.yarn/patches/left-pad.patch::version=1.3.0&hash=1"\n'
    )
    refusal = lockfile_refusal(Manager.YARN_BERRY, "yarn.lock", own.encode())
    assert refusal is not None and "left-pad" in refusal
    workspace = (
        good + '\n"lib@workspace:packages/lib":\n  resolution: "lib@workspace:packages/lib"\n'
    )
    assert lockfile_refusal(Manager.YARN_BERRY, "yarn.lock", workspace.encode()) is not None


def test_bun_refuses_git_entries_other_workspaces_and_its_binary_lockfile() -> None:
    lock = load_jsonc(sample("bun", "bun.lock"))
    assert lock is not None
    git = json.loads(json.dumps(lock))
    git["packages"]["lib"] = ["lib@github:someone/lib#abc", {}, "abc"]
    refusal = lockfile_refusal(Manager.BUN, "bun.lock", json.dumps(git).encode())
    assert refusal is not None and "lib" in refusal
    workspaces = json.loads(json.dumps(lock))
    workspaces["workspaces"]["packages/a"] = {"name": "a"}
    assert "root workspace" in (
        lockfile_refusal(Manager.BUN, "bun.lock", json.dumps(workspaces).encode()) or ""
    )
    assert "binary" in (lockfile_refusal(Manager.BUN, "bun.lockb", b"\x00bun") or "")


@pytest.mark.parametrize(
    ("manager", "manifest", "files", "yaml", "said"),
    [
        (Manager.PNPM, {}, [".npmrc"], None, "own .npmrc"),
        (Manager.BUN, {}, ["bunfig.toml"], None, "own bunfig.toml"),
        (Manager.YARN_CLASSIC, {}, [".yarnrc"], None, "own .yarnrc"),
        (Manager.PNPM, {"pnpm": {"overrides": {"a": "1"}}}, [], None, '"pnpm" settings'),
        (Manager.PNPM, {}, [], b"packages: ['apps/*']\n", "pnpm-workspace.yaml"),
        (Manager.BUN, {"patchedDependencies": {"a@1": "p.patch"}}, [], None, "patched"),
        (Manager.YARN_BERRY, {"resolutions": {"a": "1"}}, [], None, '"resolutions"'),
    ],
)
def test_projects_that_change_the_install_beyond_the_lockfile_install_privately(
    manager: Manager, manifest: dict[str, object], files: list[str], yaml: bytes | None, said: str
) -> None:
    refusal = project_refusal(manager, manifest, files, yaml)
    assert refusal is not None and said in refusal


def test_script_allowlists_and_berrys_own_rc_file_do_not_stop_sharing() -> None:
    allow = {"pnpm": {"onlyBuiltDependencies": ["esbuild"]}}
    assert project_refusal(Manager.PNPM, allow, [], b"onlyBuiltDependencies: [sharp]\n") is None
    assert project_refusal(Manager.YARN_BERRY, {}, [".yarnrc.yml"], None) is None  # never read


def test_the_layers_package_json_has_the_dependencies_and_allowlists_but_no_scripts() -> None:
    manifest = {
        "name": "app",
        "version": "1.2.3",
        "scripts": {"postinstall": "node evil.js", "build": "vite build"},
        "dependencies": {"ms": "^2.1.1"},
        "devDependencies": {"vite": "^6"},
        "pnpm": {"onlyBuiltDependencies": ["esbuild"]},
        "trustedDependencies": ["sharp"],
        "dependenciesMeta": {"esbuild": {"built": True}},
        "packageManager": "pnpm@10.34.9",
    }
    pnpm = layer_manifest(Manager.PNPM, manifest, b"onlyBuiltDependencies: [sharp]\n")
    assert "scripts" not in pnpm
    assert pnpm["name"] == "app" and pnpm["dependencies"] == {"ms": "^2.1.1"}
    assert pnpm["pnpm"] == {"onlyBuiltDependencies": ["esbuild", "sharp"]}
    assert "trustedDependencies" not in pnpm
    bun = layer_manifest(Manager.BUN, manifest, None)
    assert bun["trustedDependencies"] == ["sharp"] and "pnpm" not in bun
    berry = layer_manifest(Manager.YARN_BERRY, manifest, None)
    assert "scripts" not in berry and "pnpm" not in berry
    # yarn 4.14+'s script allowlist, which its lockfile records too
    assert berry["dependenciesMeta"] == {"esbuild": {"built": True}}
    assert "dependenciesMeta" not in pnpm and "dependenciesMeta" not in bun


def test_berry_records_no_checksum_for_a_package_with_platform_conditions() -> None:
    good = sample("berry", "yarn.lock").decode()

    def with_entry(name: str, extra: str) -> bytes:
        return (
            good + f'\n"{name}@npm:1.95.0":\n  version: 1.95.0\n'
            f'  resolution: "{name}@npm:1.95.0"\n{extra}  languageName: node\n'
            "  linkType: hard\n"
        ).encode()

    # yarn 4 writes no checksum for any package with conditions, even one installed here
    for conditions in ("os=android & cpu=arm", "os=linux & cpu=x64 & libc=glibc"):
        lock = with_entry("@oxlint/binding-x", f"  conditions: {conditions}\n")
        assert lockfile_refusal(Manager.YARN_BERRY, "yarn.lock", lock) is None
    refusal = lockfile_refusal(Manager.YARN_BERRY, "yarn.lock", with_entry("left-pad", ""))
    assert refusal is not None and "no checksum" in refusal
