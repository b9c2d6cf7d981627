"""Unit tests for orchestrator.storage.artifacts on real folders under tmp_path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from orchestrator.errors import BuildError
from orchestrator.storage.artifacts import OutputLimits, check_output, describe_tree, output_folder

LIMITS = OutputLimits(max_bytes=10_000, max_files=10)


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture()
def dist(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "dist",
        {
            "index.html": "<!doctype html>",
            "assets/index-abc123.js": "console.log(1)",
            "assets/index-abc123.css": "body{}",
            "docs/index.html": "docs",
            "docs/guide/page.html": "guide",
            "empty/.keep": "",
        },
    )


def code_of(dist: Path, limits: OutputLimits = LIMITS) -> str:
    with pytest.raises(BuildError) as caught:
        check_output(dist, limits)
    return caught.value.code


# ----------------------------------------------------------------- check_output


def test_a_plain_tree_is_counted(dist: Path) -> None:
    expected = sum(p.stat().st_size for p in dist.rglob("*") if p.is_file())
    assert check_output(dist, LIMITS) == (6, expected)


def test_bounds_are_inclusive(dist: Path) -> None:
    files, size = check_output(dist, LIMITS)
    assert check_output(dist, OutputLimits(max_bytes=size, max_files=files)) == (files, size)


def test_missing_dist_is_a_build_failure(tmp_path: Path) -> None:
    assert code_of(tmp_path / "dist") == "build_failed"


def test_dist_that_is_a_file_is_unsafe(tmp_path: Path) -> None:
    (tmp_path / "dist").write_text("x")
    assert code_of(tmp_path / "dist") == "unsafe_output"


def test_dist_that_is_a_symlink_is_unsafe(tmp_path: Path, dist: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(dist, target_is_directory=True)
    assert code_of(link) == "unsafe_output"


@pytest.mark.parametrize(
    ("where", "target"),
    [
        ("leak.txt", "/etc/passwd"),
        ("assets/leak.js", "/etc/passwd"),
        ("docs/guide/deep.html", "../../index.html"),
        ("dangling", "/no/such/file"),
        ("assets/sub", "/etc"),
        ("index2.html", "index.html"),
    ],
)
def test_symlinks_anywhere_are_unsafe(dist: Path, where: str, target: str) -> None:
    (dist / where).symlink_to(target)
    assert code_of(dist) == "unsafe_output"


def test_symlinked_index_is_unsafe(tmp_path: Path, dist: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"index.html": "x"})
    (dist / "index.html").unlink()
    (dist / "index.html").symlink_to(outside / "index.html")
    assert code_of(dist) == "unsafe_output"


def test_hardlink_inside_the_tree_is_unsafe(dist: Path) -> None:
    os.link(dist / "index.html", dist / "docs" / "copy.html")
    assert code_of(dist) == "unsafe_output"


def test_hardlink_to_an_outside_file_is_unsafe(tmp_path: Path, dist: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    os.link(secret, dist / "assets" / "secret.txt")
    assert code_of(dist) == "unsafe_output"


def test_fifo_is_unsafe(dist: Path) -> None:
    os.mkfifo(dist / "docs" / "pipe")
    assert code_of(dist) == "unsafe_output"


def test_too_many_files(dist: Path) -> None:
    assert code_of(dist, OutputLimits(max_bytes=10_000, max_files=5)) == "output_too_large"


def test_too_many_bytes(dist: Path) -> None:
    (dist / "assets" / "big.bin").write_bytes(b"\0" * 10_001)
    assert code_of(dist) == "output_too_large"


def test_too_deep(dist: Path) -> None:
    (dist / "a" / "b" / "c").mkdir(parents=True)
    assert code_of(dist, OutputLimits(max_bytes=10_000, max_files=10, max_depth=2)) == (
        "output_too_large"
    )
    assert check_output(dist, OutputLimits(max_bytes=10_000, max_files=10, max_depth=3))


def test_no_index_html_is_a_build_failure(dist: Path) -> None:
    (dist / "index.html").unlink()
    assert code_of(dist) == "build_failed"


def test_index_html_that_is_a_folder_is_a_build_failure(dist: Path) -> None:
    (dist / "index.html").unlink()
    make_tree(dist / "index.html", {"x": "y"})
    assert code_of(dist) == "build_failed"


# ---------------------------------------------------------------- describe_tree


def test_describe_tree_lists_every_file_with_size_type_and_hash(dist: Path) -> None:
    manifest = describe_tree(dist, "b1")
    assert manifest.build_id == "b1"
    assert sorted(manifest.files) == [
        "assets/index-abc123.css",
        "assets/index-abc123.js",
        "docs/guide/page.html",
        "docs/index.html",
        "empty/.keep",
        "index.html",
    ]
    script = manifest.files["assets/index-abc123.js"]
    assert script.size == len("console.log(1)")
    assert script.content_type == "text/javascript; charset=utf-8"
    assert script.sha256 == hashlib.sha256(b"console.log(1)").hexdigest()
    assert manifest.files["index.html"].content_type == "text/html; charset=utf-8"
    assert manifest.total_bytes == sum(p.stat().st_size for p in dist.rglob("*") if p.is_file())


# ----------------------------------------------------------------- output_folder


def test_output_folder_is_found_through_real_folders(tmp_path: Path) -> None:
    make_tree(tmp_path, {"build/client/index.html": "x", "file": "x"})
    assert output_folder(tmp_path, "build/client") == tmp_path / "build" / "client"
    assert output_folder(tmp_path, "missing/client") is None
    assert output_folder(tmp_path, "file") is None  # not a folder
    assert output_folder(tmp_path, "file/below") is None


@pytest.mark.parametrize("relative", ["out", "out/client", "real/link/x"])
def test_a_link_on_the_way_to_the_output_is_unsafe(tmp_path: Path, relative: str) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("/usr", tmp_path / "out")
    os.symlink("/usr", tmp_path / "real" / "link")
    with pytest.raises(BuildError) as caught:
        output_folder(tmp_path, relative)
    assert caught.value.code == "unsafe_output"


def test_messages_name_the_folder_published(tmp_path: Path) -> None:
    make_tree(tmp_path / "www", {"a.js": "x"})
    with pytest.raises(BuildError) as caught:
        check_output(tmp_path / "www", LIMITS, "build/www")
    assert caught.value.message == "build/www/ has no index.html"
