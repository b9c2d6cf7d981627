"""The per-build workspace filesystem, on the real host (mounting needs root)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from orchestrator.sandbox import workspace

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a workspace needs root (the worker runs as root)"
)


def test_a_workspace_is_its_own_small_filesystem(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    workspace.create(folder, 16)
    try:
        assert os.path.ismount(folder)
        assert list(folder.iterdir()) == []  # no lost+found for the project to trip on
        with pytest.raises(OSError) as caught, (folder / "fill").open("wb") as out:
            for _ in range(64):
                out.write(b"\0" * 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
        assert caught.value.errno == errno.ENOSPC
        assert workspace.is_full(folder)
    finally:
        workspace.remove(folder)
    assert not folder.exists() and not workspace.image_path(folder).exists()


def test_zero_means_a_plain_folder(tmp_path: Path) -> None:
    folder = tmp_path / "b2"
    workspace.create(folder, 0)
    assert folder.is_dir() and not os.path.ismount(folder)
    assert not workspace.is_full(folder)
    workspace.remove(folder)
    assert not folder.exists()


def test_create_replaces_leftovers_of_an_earlier_attempt(tmp_path: Path) -> None:
    folder = tmp_path / "b3"
    workspace.create(folder, 16)
    (folder / "stale").write_text("x")
    workspace.create(folder, 16)
    try:
        assert not (folder / "stale").exists()
    finally:
        workspace.remove(folder)
