"""The yarn scripts probe, run by the host's Node on real folders (no container)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.builds.scripts_probe import SKIPPED, when_scripted

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="the probe is Node code: needs node")


def run_probe(folder: Path) -> str:
    """What the wrapped command did: 'skipped' or 'rebuilt'."""
    argv = when_scripted(["sh", "-c", "echo REBUILT"])
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, check=True)
    if "REBUILT" in done.stdout:
        assert SKIPPED not in done.stdout
        return "rebuilt"
    assert done.stdout.strip() == SKIPPED, done.stdout + done.stderr
    return "skipped"


def package(folder: Path, name: str, **fields: object) -> Path:
    where = folder / "node_modules" / name
    where.mkdir(parents=True)
    (where / "package.json").write_text(json.dumps({"name": name, "version": "1.0.0", **fields}))
    return where


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "package.json").write_text(json.dumps({"name": "app", "private": True}))
    package(tmp_path, "ms", scripts={"test": "x"})
    package(tmp_path, "@scope/plain")
    (tmp_path / "node_modules" / ".bin").mkdir()
    (tmp_path / "node_modules" / ".yarn-state.yml").write_text("x")
    return tmp_path


def test_a_tree_without_install_scripts_skips_the_rebuild(project: Path) -> None:
    assert run_probe(project) == "skipped"


def test_no_node_modules_at_all_skips(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{}")
    assert run_probe(tmp_path) == "skipped"


@pytest.mark.parametrize("hook", ["preinstall", "install", "postinstall"])
def test_an_install_hook_anywhere_runs_it(project: Path, hook: str) -> None:
    nested = package(project / "node_modules" / "ms", "deep", scripts={hook: "node x.js"})
    assert nested.parent.parent.name == "ms"
    assert run_probe(project) == "rebuilt"


def test_a_scoped_package_with_binding_gyp_runs_it(project: Path) -> None:
    (project / "node_modules" / "@scope" / "plain" / "binding.gyp").write_text("{}")
    assert run_probe(project) == "rebuilt"


@pytest.mark.parametrize(
    "make",
    [
        lambda p: (p / "node_modules" / "linked").symlink_to(p),  # a workspace or link:
        lambda p: (p / "node_modules" / "ms" / "package.json").write_text("{not json"),
        lambda p: (p / "package.json").write_text('{"workspaces": ["apps/*"]}'),
    ],
    ids=["link", "unreadable-manifest", "workspace-root"],
)
def test_whatever_the_probe_cannot_be_sure_of_runs_the_rebuild(
    project: Path, make: Callable[[Path], object]
) -> None:
    make(project)
    assert run_probe(project) == "rebuilt"


def test_an_empty_hook_is_no_script(project: Path) -> None:
    package(project, "empty", scripts={"postinstall": ""})
    assert run_probe(project) == "skipped"
