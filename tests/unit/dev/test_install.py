"""Unit tests for orchestrator.dev.install: a session installs as a build of its files would,
through the fake sandbox (the chosen Node and manager on every step, the manager's own
install and script rules, the dev server's step equipped the same way)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.dev.container import dev_step
from orchestrator.dev.folders import session_facts
from orchestrator.dev.install import SessionInstaller
from orchestrator.errors import BuildError
from orchestrator.project.environment import Manager, Offer
from orchestrator.project.input import Files
from orchestrator.sandbox.fake import FAKE_OFFER, StepCall
from orchestrator.sandbox.image.toolchains import step_path
from orchestrator.sandbox.step import Limits
from tests.unit.builds.conftest import LOCKED, Kiln, make_kiln

SAMPLES = Path(__file__).resolve().parents[1] / "project" / "samples"


def sample(folder: str, **fields: Any) -> Files:
    """A sample project the real manager locked (tests/unit/project/samples)."""
    files: Files = {p.name: p.read_bytes() for p in (SAMPLES / folder).iterdir()}
    package = json.loads(files["package.json"]) | fields
    return {**files, "package.json": json.dumps(package).encode()}


@pytest.fixture
def kiln(tmp_path: Path) -> Iterator[Kiln]:
    made = make_kiln(tmp_path / "var")
    yield made
    made.ctx.store.engine.dispose()


def session(kiln: Kiln, files: Files, project: str = "shop") -> tuple[SessionInstaller, list[str]]:
    workspace = kiln.ctx.settings.work_dir / f"dev-{project}"
    workspace.mkdir(parents=True)
    for name, data in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_bytes(data)
    notes: list[str] = []
    installer = SessionInstaller(
        kiln.ctx,
        project,
        workspace=workspace,
        limits=Limits(60, 512, 1.0),
        on_output=lambda _stream, _lines: None,
        note=notes.append,
        stopped=lambda: False,
    )
    return installer, notes


def install(
    kiln: Kiln,
    files: Files,
    requested: object = None,
    project: str = "shop",
    root: str | None = None,
) -> tuple[SessionInstaller, str]:
    installer, notes = session(kiln, files, project)
    facts = session_facts(files, root)
    installer.choose(facts.manifest, facts.files, requested)
    installer.install(facts.manifest, facts.files, facts.layout)
    return installer, "\n".join(notes)


def in_folder(folder: str, files: Files) -> Files:
    return {f"{folder}/{name}": data for name, data in files.items()}


def calls(kiln: Kiln, name: str) -> list[StepCall]:
    return [call for call in kiln.sandbox.calls if call.name == name]


def test_a_pnpm_session_on_nvmrc_20_takes_a_pnpm_layer_and_runs_node_20(kiln: Kiln) -> None:
    files = {**sample("pnpm", pnpm={"onlyBuiltDependencies": ["esbuild"]}), ".nvmrc": b"20\n"}
    installer, log = install(kiln, files)
    assert kiln.sandbox.ran() == ["layer-install", "scripts"]  # the layer's, made once
    assert installer.layer is not None
    step = calls(kiln, "layer-install")[0].step
    assert step.argv[:4] == ["pnpm", "install", "--frozen-lockfile", "--ignore-scripts"]
    assert step.network
    scripts = calls(kiln, "scripts")[0].step
    assert scripts.argv == ["pnpm", "rebuild", "--reporter=append-only", "esbuild"]
    assert not scripts.network
    for call in kiln.sandbox.calls:
        assert dict(call.step.toolenv)["PATH"] == step_path(20, Manager.PNPM)
    dev = installer.equip(dev_step())  # the dev server runs the same Node
    assert dict(dev.toolenv)["PATH"] == step_path(20, Manager.PNPM) and not dev.network
    pinned = FAKE_OFFER.managers[Manager.PNPM]
    assert f"environment: Node 20.0.0 (.nvmrc), pnpm@{pinned} (pnpm-lock.yaml)" in log
    assert "dependency layer miss" in log
    again, log = install(kiln, files, project="other")  # a second session, the same lockfile
    assert "dependency layer hit" in log
    assert again.layer is not None and again.layer.key == installer.layer.key
    assert kiln.sandbox.ran() == ["layer-install", "scripts"]  # nothing installed again
    installer.release()
    again.release()


def test_layers_are_not_shared_across_managers(kiln: Kiln) -> None:
    on_pnpm, _log = install(kiln, sample("pnpm"))
    on_npm, _log = install(kiln, LOCKED, project="other")
    assert on_pnpm.layer is not None and on_npm.layer is not None
    assert on_pnpm.layer.key != on_npm.layer.key
    on_pnpm.release()
    on_npm.release()


def test_an_app_in_a_subfolder_installs_and_takes_its_layer_there(kiln: Kiln) -> None:
    files = {"README.md": b"# an export\n", **in_folder("front", sample("pnpm"))}
    installer, log = install(kiln, files, root="front")
    assert installer.layer is not None
    assert "layer-install" in kiln.sandbox.ran()
    assert "environment: Node 22.0.0 (default), pnpm@" in log  # front/'s lockfile chose it


def test_a_workspace_member_installs_privately_at_its_workspace_root(kiln: Kiln) -> None:
    member = json.dumps({"name": "web", "dependencies": {"left-pad": "1.3.0"}}).encode()
    files = {
        "package.json": json.dumps({"name": "mono", "workspaces": ["apps/*"]}).encode(),
        "apps/web/package.json": member,
    }
    installer, log = install(kiln, files, root="apps/web")
    assert installer.layer is None
    assert "not shared for a workspace" in log
    step = calls(kiln, "install")[0].step
    assert step.workdir == "" and step.argv[:2] == ["npm", "install"]  # at the root


def test_an_npm_session_keeps_the_shared_layer_keyed_by_its_node(kiln: Kiln) -> None:
    on_24, _log = install(kiln, LOCKED, requested=24)
    assert on_24.layer is not None  # made once by the layer's own install container
    install_call = calls(kiln, "layer-install")[0]
    assert install_call.step.argv[:2] == ["npm", "ci"]
    assert dict(install_call.step.toolenv)["PATH"] == step_path(24, Manager.NPM)
    on_22, _log = install(kiln, LOCKED, project="other")
    assert on_22.layer is not None and on_22.layer.key != on_24.layer.key  # not shared
    on_24.release()
    on_22.release()


def test_a_node_the_image_no_longer_offers_fails_the_session(tmp_path: Path) -> None:
    kiln = make_kiln(tmp_path / "var")
    kiln.sandbox._offer = Offer({22: "22.0.0"}, FAKE_OFFER.managers)
    installer, _notes = session(kiln, LOCKED)
    with pytest.raises(BuildError) as caught:
        installer.choose(json.loads(LOCKED["package.json"]), LOCKED, 20)
    assert caught.value.code == "unsupported_environment"


def test_a_stale_pnpm_lockfile_after_an_edit_reinstalls_with_pnpm(kiln: Kiln) -> None:
    files = sample("pnpm")
    manifest = json.loads(files["package.json"])
    manifest.setdefault("dependencies", {})["left-pad"] = "^1.3.0"  # a PATCH added it
    files["package.json"] = json.dumps(manifest).encode()
    _installer, log = install(kiln, files)
    assert calls(kiln, "install")[0].step.argv[:3] == ["pnpm", "install", "--no-frozen-lockfile"]
    assert "pnpm-lock.yaml does not match package.json" in log
