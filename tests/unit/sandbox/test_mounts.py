"""Unit tests for orchestrator.sandbox.mounts: reaching a mount point without links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import SandboxError
from orchestrator.sandbox.mounts import folder_beneath, mounts_at


def test_a_folder_is_reached_through_the_folder_opened(tmp_path: Path) -> None:
    (tmp_path / "front" / "node_modules").mkdir(parents=True)
    with folder_beneath(tmp_path, "front/node_modules") as where:
        assert where.path == f"/proc/self/fd/{where.fd}"
        assert os.path.samefile(where.path, tmp_path / "front" / "node_modules")


def test_the_last_folder_is_made_when_asked(tmp_path: Path) -> None:
    (tmp_path / "front").mkdir()
    with folder_beneath(tmp_path, "front/node_modules", make_last=True):
        pass
    assert (tmp_path / "front" / "node_modules").is_dir()
    with (
        pytest.raises(SandboxError, match="no folder"),
        folder_beneath(tmp_path, "other/node_modules", make_last=True),
    ):
        pass


@pytest.mark.parametrize("link_at", ["front", "front/node_modules"])
def test_a_link_on_the_way_is_refused(tmp_path: Path, link_at: str) -> None:
    outside = tmp_path / "outside"
    (outside / "node_modules").mkdir(parents=True)
    root = tmp_path / "ws"
    (root / "front").mkdir(parents=True)
    if link_at == "front":
        (root / "front").rmdir()
        (root / "front").symlink_to(outside)
    else:
        (root / "front" / "node_modules").symlink_to(outside / "node_modules")
    with (
        pytest.raises(SandboxError, match="not a folder"),
        folder_beneath(root, "front/node_modules", make_last=True),
    ):
        pass


def test_a_path_out_of_the_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="outside"), folder_beneath(tmp_path, "../etc"):
        pass


def test_mounts_at_counts_the_root_filesystem() -> None:
    assert mounts_at(Path("/")) >= 1
    assert mounts_at(Path("/no/such/mount/point")) == 0
