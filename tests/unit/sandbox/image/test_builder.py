"""Unit tests for orchestrator.sandbox.image.builder's image digest (no Docker, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SandboxImageError
from orchestrator.sandbox.image import builder
from orchestrator.sandbox.image.builder import image_digest

# ---------------------------------------------------------------- image_digest


@pytest.fixture()
def source_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM node:22-bookworm-slim\n")
    (d / "npmrc").write_text("fund=false\n")
    return d


def test_digest_is_stable(source_dir: Path) -> None:
    a = image_digest(source_dir, 22)
    assert a == image_digest(source_dir, 22)
    assert len(a) == 64 and int(a, 16) >= 0


def test_digest_changes_when_a_file_changes(source_dir: Path) -> None:
    before = image_digest(source_dir, 22)
    (source_dir / "Dockerfile").write_text("FROM node:22-bookworm-slim\nUSER 10001\n")
    assert image_digest(source_dir, 22) != before


def test_digest_changes_when_a_file_is_added_or_renamed(source_dir: Path) -> None:
    before = image_digest(source_dir, 22)
    (source_dir / "extra").write_text("x")
    added = image_digest(source_dir, 22)
    assert added != before
    (source_dir / "extra").rename(source_dir / "other")
    assert image_digest(source_dir, 22) not in (before, added)


def test_digest_changes_with_node_major(source_dir: Path) -> None:
    assert image_digest(source_dir, 22) != image_digest(source_dir, 24)


def test_digest_changes_with_builder_version(
    source_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = image_digest(source_dir, 22)
    monkeypatch.setattr(builder, "BUILDER_VERSION", builder.BUILDER_VERSION + "-next")
    assert image_digest(source_dir, 22) != before


def test_digest_of_missing_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxImageError):
        image_digest(tmp_path / "nope", 22)


def test_repository_sources_exist() -> None:
    # The real builder inputs: the module hashes these.
    assert (builder.SOURCE_DIR / "Dockerfile").is_file()
    assert (builder.SOURCE_DIR / "npmrc").is_file()
