"""Dependency layers of pnpm, yarn 1, yarn 2+ and bun projects through the real stack.

The projects are ``projects/<manager>`` (``ms`` locked at 2.1.1, a postinstall that
records whether it was offline). Each test gives its lockfile a fresh trailing comment or
blank line (every manager accepts it frozen), so its layer is new to this run: the first
build must make it (``miss``) and the second must mount it (``hit``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.integration.test_environments import built, fixture_line, project

pytestmark = pytest.mark.integration

LOCKFILES = {
    "pnpm": "pnpm-lock.yaml",
    "bun": "bun.lock",
    "yarn1": "yarn.lock",
    "berry": "yarn.lock",
}


def fresh_lockfile(name: str, **overrides: str) -> dict[str, str]:
    """The project ``name`` with a lockfile no earlier build had (same packages)."""
    files = project(name, **overrides)
    lockfile = LOCKFILES[name]
    nonce = uuid.uuid4().hex
    if name == "bun":  # JSON with trailing commas: whitespace is what may vary
        files[lockfile] = files[lockfile].rstrip() + "\n" + " " * (1 + int(nonce[:2], 16)) + "\n"
    elif name == "berry":  # yarn 2+ rewrites comments away: a new project name instead
        renamed = f"env-berry-{nonce[:12]}"
        files[lockfile] = files[lockfile].replace("env-berry@workspace", f"{renamed}@workspace")
        files["package.json"] = files["package.json"].replace('"env-berry"', f'"{renamed}"')
    else:  # YAML and yarn 1's format both take a comment
        files[lockfile] = files[lockfile].rstrip() + f"\n# {nonce}\n"
    return files


def changed_source(files: dict[str, str]) -> dict[str, str]:
    """The same project with one source file edited (not an identical resubmission)."""
    return {**files, "build.js": files["build.js"] + f"\n// {uuid.uuid4().hex}\n"}


@pytest.mark.parametrize("name", ["pnpm", "bun", "yarn1", "berry"])
def test_a_second_build_mounts_the_layer_the_first_made(stack: Stack, name: str) -> None:
    files = fresh_lockfile(name)
    first, first_log = built(stack, files)
    line = fixture_line(stack, first, first_log)
    assert first["cache"]["layer"] == "miss", first_log
    assert "installing it once for all" in first_log
    assert line["ms"] == "2.1.1" and line["postinstall"].startswith("offline-"), line

    second, second_log = built(stack, changed_source(files))
    line = fixture_line(stack, second, second_log)
    assert second["cache"] == {"layer": "hit", "layer_key": first["cache"]["layer_key"]}
    assert f"dependency layer hit {first['cache']['layer_key'][:12]}" in second_log
    assert "layer-install" not in second_log  # nothing installed: the layer was mounted
    assert line["ms"] == "2.1.1", line  # the lockfile's version, from the read-only layer
    assert line["postinstall"].startswith("offline-"), line  # its own script, offline


def test_layers_are_not_shared_across_managers_or_node_majors(stack: Stack) -> None:
    pnpm = fresh_lockfile("pnpm")
    npm = project("npm")  # the same dependencies (ms ^2.1.1 at 2.1.1), npm's lockfile
    assert json.loads(npm["package.json"])["dependencies"] == {"ms": "^2.1.1"}
    bodies: dict[str, dict[str, Any]] = {}
    for label, files, fields in (
        ("pnpm-22", pnpm, {}),
        ("pnpm-20", pnpm, {"node": 20}),
        ("npm-22", npm, {}),
    ):
        body, text = built(stack, files, **fields)
        assert body["status"] == "succeeded", text[-3000:]
        bodies[label] = body
    assert bodies["pnpm-22"]["environment"]["package_manager"].startswith("pnpm@")
    assert bodies["npm-22"]["environment"]["package_manager"].startswith("npm@")
    assert bodies["pnpm-20"]["environment"]["node"].startswith("20.")
    keys = {label: body["cache"]["layer_key"] for label, body in bodies.items()}
    assert len(set(keys.values())) == 3, keys
    assert bodies["pnpm-20"]["cache"]["layer"] == "miss"  # not pnpm-22's layer


def test_a_pnpm_project_with_its_own_npmrc_installs_privately(stack: Stack) -> None:
    files = fresh_lockfile("pnpm", **{".npmrc": "fund=false\n"})
    body, text = built(stack, files)
    assert fixture_line(stack, body, text)["ms"] == "2.1.1"
    assert body["cache"] == {"layer": "private"}
    assert "not shared because the project has its own .npmrc" in text
