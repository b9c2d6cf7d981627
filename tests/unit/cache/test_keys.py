"""Unit tests for orchestrator.cache.keys: what decides a key, and who may share a layer."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.cache.keys import (
    KEY_CHARS,
    Toolchain,
    input_key,
    layer_key,
    layer_manifest,
    lockfile_refusal,
    project_refusal,
    resolution_key,
    resolution_manifest,
    source_digest,
)
from orchestrator.project.npm import has_dependencies, root_install_scripts

TOOLS = Toolchain(image_id="sha256:aaa", node_version="22.11.0", platform="linux/amd64")
ARGV = ["npm", "ci", "--ignore-scripts"]
PACKAGE = {
    "version": "1.0.0",
    "resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz",
    "integrity": "sha512-abc",
}


def lock(**packages: Any) -> dict[str, Any]:
    root = {"name": "app", "version": "0.1.0", "dependencies": {"a": "^1.0.0"}}
    return {"name": "app", "lockfileVersion": 3, "packages": {"": root, **packages}}


LOCK_BYTES = json.dumps(lock(**{"node_modules/a": PACKAGE})).encode()


# ------------------------------------------------------------------- layer_key


def test_layer_key_is_stable_and_short_hex() -> None:
    key = layer_key(LOCK_BYTES, install_argv=ARGV, toolchain=TOOLS)
    assert key == layer_key(LOCK_BYTES, install_argv=list(ARGV), toolchain=TOOLS)
    assert len(key) == KEY_CHARS and int(key, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"lockfile": LOCK_BYTES + b" "},
        {"install_argv": [*ARGV, "--legacy-peer-deps"]},
        {"toolchain": replace(TOOLS, image_id="sha256:bbb")},
        {"toolchain": replace(TOOLS, node_version="22.12.0")},
        {"toolchain": replace(TOOLS, platform="linux/arm64")},
        {"scripts_argv": ["sh", "-c", "npm rebuild esbuild"]},
        {"settings": {"rc": '{"packageExtensions": {}}'}},
    ],
    ids=["lockfile", "flags", "image", "node", "platform", "scripts", "settings"],
)
def test_every_input_of_a_layer_changes_its_key(change: dict[str, Any]) -> None:
    base = {"lockfile": LOCK_BYTES, "install_argv": ARGV, "toolchain": TOOLS}
    changed = {**base, **change}
    assert layer_key(changed.pop("lockfile"), **changed) != layer_key(base.pop("lockfile"), **base)


def test_the_trusted_set_is_part_of_the_key_and_no_scripts_keeps_it() -> None:
    def key(scripts: list[str] | None) -> str:
        return layer_key(LOCK_BYTES, install_argv=ARGV, toolchain=TOOLS, scripts_argv=scripts)

    assert key(None) == layer_key(LOCK_BYTES, install_argv=ARGV, toolchain=TOOLS)
    assert key(None) == layer_key(LOCK_BYTES, install_argv=ARGV, toolchain=TOOLS, settings={})
    assert key(["sh", "-c", "npm rebuild esbuild"]) != key(["sh", "-c", "npm rebuild sharp"])


# ------------------------------------------------------------ lockfile_refusal


def test_registry_packages_with_integrity_may_share_a_layer() -> None:
    bundled = {"version": "1.0.0", "inBundle": True}
    assert (
        lockfile_refusal(lock(**{"node_modules/a": PACKAGE, "node_modules/a/b": bundled})) is None
    )


@pytest.mark.parametrize(
    ("path", "entry", "reason"),
    [
        ("node_modules/a", {"resolved": "packages/a", "link": True}, "local link"),
        ("node_modules/a", {**PACKAGE, "integrity": None}, "integrity"),
        ("node_modules/a", {"resolved": "git+ssh://git@github.com/x/a.git#abc"}, "registry"),
        ("node_modules/a", {**PACKAGE, "resolved": "file:../a.tgz"}, "registry"),
        ("node_modules/../../etc", PACKAGE, "plain node_modules"),
        ("packages/a", PACKAGE, "plain node_modules"),
        ("node_modules/a", "nonsense", "malformed"),
    ],
)
def test_lockfiles_that_could_differ_between_projects_are_refused(
    path: str, entry: object, reason: str
) -> None:
    refusal = lockfile_refusal(lock(**{path: entry}))
    assert refusal is not None and reason in refusal


def test_lockfile_version_1_is_refused() -> None:
    assert lockfile_refusal({"lockfileVersion": 1, "dependencies": {}}) is not None


# ------------------------------------------------------------- project_refusal


def test_projects_with_npmrc_or_overrides_install_privately() -> None:
    assert project_refusal({}, ["package.json", "src"]) is None
    assert ".npmrc" in (project_refusal({}, ["package.json", ".npmrc"]) or "")
    assert "overrides" in (project_refusal({"overrides": {"a": "1"}}, []) or "")
    assert "workspaces" in (project_refusal({"workspaces": ["x"]}, []) or "")


# -------------------------------------------------------------- layer_manifest


def test_layer_manifest_comes_from_the_lockfile_and_has_no_scripts() -> None:
    data = lock()
    data["packages"][""]["devDependencies"] = {"vite": "^7"}
    manifest = layer_manifest(data)
    assert manifest == {
        "name": "app",
        "version": "0.1.0",
        "private": True,
        "dependencies": {"a": "^1.0.0"},
        "devDependencies": {"vite": "^7"},
    }


def test_root_install_scripts_in_npm_order() -> None:
    scripts = {"postinstall": "x", "build": "vite build", "preinstall": "y", "prepare": "z"}
    assert root_install_scripts({"scripts": scripts}) == ["preinstall", "postinstall"]
    assert root_install_scripts({}) == []


# ---------------------------------------------------------- resolution_key


def test_resolution_depends_on_dependency_ranges_not_on_the_rest() -> None:
    base = {"name": "one", "scripts": {"build": "vite build"}, "dependencies": {"a": "^1"}}
    other = {"name": "two", "scripts": {"build": "tsc"}, "dependencies": {"a": "^1"}}
    kw: dict[str, Any] = {"resolve_argv": ARGV, "toolchain": TOOLS, "registry": "https://r/"}
    assert resolution_key(base, None, **kw) == resolution_key(other, None, **kw)
    assert resolution_key(base, None, **kw) != resolution_key(
        {**base, "dependencies": {"a": "^2"}}, None, **kw
    )
    assert resolution_key(base, None, **kw) != resolution_key(base, b"{}", **kw)
    assert resolution_key(base, None, **kw) != resolution_key(
        base, None, **{**kw, "registry": "https://mirror/"}
    )
    assert resolution_manifest(base)["name"] == resolution_manifest(other)["name"]


# ------------------------------------------------------- source_digest, input_key


def test_source_digest_covers_paths_and_contents_in_any_order() -> None:
    files = {"a.js": b"1", "src/b.js": b"2"}
    assert source_digest(files) == source_digest(dict(reversed(files.items())))
    assert source_digest(files) != source_digest({**files, "a.js": b"1 "})
    assert source_digest(files) != source_digest({"b.js": b"1", "src/b.js": b"2"})
    assert source_digest({"ab": b"c"}) != source_digest({"a": b"bc"})


def test_input_key_depends_on_image_and_settings() -> None:
    key = input_key("s", image_id="i", settings={"registry": "r"})
    assert key == input_key("s", image_id="i", settings={"registry": "r"})
    assert key != input_key("s", image_id="j", settings={"registry": "r"})
    assert key != input_key("s", image_id="i", settings={"registry": "q"})
    assert key != input_key("t", image_id="i", settings={"registry": "r"})


def test_has_dependencies() -> None:
    assert not has_dependencies({"name": "x", "scripts": {"build": "node b.js"}})
    assert not has_dependencies({"dependencies": {}, "peerDependenciesMeta": {"a": {}}})
    assert has_dependencies({"devDependencies": {"vite": "^7"}})


def test_input_key_depends_on_the_build_env_values() -> None:
    base = {"image_id": "sha256:1", "settings": {"node_major": 22}}
    without = input_key("s", **base)  # type: ignore[arg-type]
    assert input_key("s", env={}, **base) == without  # type: ignore[arg-type]
    one = input_key("s", env={"VITE_API_URL": "https://a"}, **base)  # type: ignore[arg-type]
    two = input_key("s", env={"VITE_API_URL": "https://b"}, **base)  # type: ignore[arg-type]
    assert len({without, one, two}) == 3


def test_a_package_npm_did_not_fetch_is_pinned_by_version_and_integrity() -> None:
    # npm writes no "resolved" for an optional package of another platform it never fetched
    unfetched = {"version": "2.0.0-beta.2", "integrity": PACKAGE["integrity"], "optional": True}
    assert (
        lockfile_refusal(lock(**{"node_modules/a": PACKAGE, "node_modules/b": unfetched})) is None
    )
    for loose in ({**unfetched, "integrity": None}, {**unfetched, "version": "github:x/b"}):
        refusal = lockfile_refusal(lock(**{"node_modules/b": loose}))
        assert refusal is not None and "registry tarball" in refusal
