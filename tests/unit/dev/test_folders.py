"""Unit tests for orchestrator.dev.folders: a session finds its app as a build submit does."""

from __future__ import annotations

import json

import pytest

from orchestrator.dev.folders import is_fact, session_facts
from orchestrator.dev.vite import dependency_digest
from orchestrator.errors import InputError


def package(**fields: object) -> bytes:
    return json.dumps({"name": "app", **fields}).encode()


def test_the_top_is_the_app_and_its_digest_is_unchanged() -> None:
    manifest = {"dependencies": {"react": "^19.0.0"}}
    facts = session_facts({"package.json": package(**manifest), ".nvmrc": b"20\n"}, None)
    assert facts.layout.app == facts.layout.install == ""
    assert facts.files == {".nvmrc": b"20\n"}
    assert facts.dependencies == dependency_digest(facts.manifest)


def test_an_app_in_a_folder_reads_its_own_lockfile_and_nvmrc() -> None:
    files = {
        "README.md": b"# export\n",
        "front/package.json": package(dependencies={"react": "^19.0.0"}),
        "front/pnpm-lock.yaml": b"lockfileVersion: '9.0'\n",
        "front/.nvmrc": b"20\n",
        ".nvmrc": b"24\n",  # not the app's
    }
    facts = session_facts(files, "front")
    assert (facts.layout.app, facts.layout.install) == ("front", "front")
    assert facts.files == {"pnpm-lock.yaml": b"lockfileVersion: '9.0'\n", ".nvmrc": b"20\n"}
    assert facts.manifest["dependencies"] == {"react": "^19.0.0"}


def test_no_top_level_package_json_and_one_folder_is_refused_naming_it() -> None:
    with pytest.raises(InputError) as caught:
        session_facts({"front/package.json": package()}, None)
    assert caught.value.code == "invalid_project"
    assert '"root": "front"' in caught.value.message


def test_a_root_without_a_package_json_is_refused() -> None:
    with pytest.raises(InputError, match=r"no app/package\.json"):
        session_facts({"package.json": package()}, "app")


def test_a_workspace_member_installs_at_the_root_and_both_manifests_count() -> None:
    files = {
        "package.json": package(workspaces=["apps/*"], devDependencies={"vite": "^7.0.0"}),
        "package-lock.json": b"{}",
        "apps/web/package.json": package(dependencies={"react": "^19.0.0"}),
    }
    facts = session_facts(files, "apps/web")
    assert facts.layout.in_workspace and facts.layout.install == ""
    assert "workspaces" in facts.manifest and facts.files == {"package-lock.json": b"{}"}
    assert facts.app_manifest["dependencies"] == {"react": "^19.0.0"}
    member_changed = {**files, "apps/web/package.json": package(dependencies={"ms": "2.1.3"})}
    root_changed = {**files, "package.json": package(workspaces=["apps/*"])}
    digests = {
        session_facts(f, "apps/web").dependencies for f in (files, member_changed, root_changed)
    }
    assert len(digests) == 3  # an edit of either package.json's dependencies reinstalls


def test_only_the_files_that_choose_the_install_are_facts() -> None:
    assert is_fact("front/package.json") and is_fact("pnpm-lock.yaml")
    assert is_fact("apps/web/.nvmrc") and is_fact("pnpm-workspace.yaml")
    assert not is_fact("front/src/App.tsx") and not is_fact("README.md")
