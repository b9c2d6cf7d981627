"""Unit tests for orchestrator.builds.environment_steps' pure and file-level parts."""

from __future__ import annotations

from pathlib import Path

from orchestrator.builds.environment_steps import environment_notes, read_plain, write_in_place
from orchestrator.project.environment import choose_environment
from orchestrator.sandbox.fake import FAKE_OFFER

PACKAGE = {"name": "app", "devDependencies": {"vite": "^7.0.0"}}


def test_the_notes_name_the_choice_and_its_warnings() -> None:
    files = {".nvmrc": b"18\n", "pnpm-lock.yaml": b"lockfileVersion: '9.0'\n"}
    notes = environment_notes(choose_environment(FAKE_OFFER, PACKAGE, files))
    assert notes[0] == "environment: Node 20.0.0 (.nvmrc), pnpm@10.0.0 (pnpm-lock.yaml)"
    assert any("asks for Node 18, which Kiln does not offer" in n for n in notes[1:])
    assert all(n.startswith("warning: ") for n in notes[1:])


def test_npm_leaves_its_lockfile_warning_to_its_own_plan() -> None:
    notes = environment_notes(choose_environment(FAKE_OFFER, PACKAGE, {}))
    assert notes == ["environment: Node 22.0.0 (default), npm@10.0.0 (default)"]


def test_a_link_in_the_workspace_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"host secret")
    link = tmp_path / "yarn.lock"
    link.symlink_to(outside)
    assert read_plain(link) is None
    write_in_place(link, b"rewritten")
    assert outside.read_bytes() == b"host secret"  # the link was replaced, not written through
    assert not link.is_symlink() and read_plain(link) == b"rewritten"


def test_a_regular_file_is_written_in_place(tmp_path: Path) -> None:
    lock = tmp_path / "yarn.lock"
    lock.write_bytes(b"old")
    inode = lock.stat().st_ino
    write_in_place(lock, b"new")
    assert lock.read_bytes() == b"new" and lock.stat().st_ino == inode  # its owner kept
