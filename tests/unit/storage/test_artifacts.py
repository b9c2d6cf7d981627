"""Unit tests for orchestrator.storage.artifacts on real folders under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.errors import BuildError
from orchestrator.storage.artifacts import (
    IMMUTABLE,
    REVALIDATE,
    OutputLimits,
    cache_control,
    check_output,
    publish,
    resolve_preview,
)

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


# ---------------------------------------------------------------------- publish


def test_publish_moves_the_folder(tmp_path: Path, dist: Path) -> None:
    destination = tmp_path / "artifacts" / "b1" / "dist"
    counts = publish(dist, destination, LIMITS)
    assert counts == check_output(destination, LIMITS)
    assert not dist.exists()
    assert (destination / "assets" / "index-abc123.js").read_text() == "console.log(1)"


def test_publish_replaces_an_existing_destination(tmp_path: Path, dist: Path) -> None:
    destination = make_tree(tmp_path / "out", {"index.html": "old", "stale.js": "old"})
    publish(dist, destination, LIMITS)
    assert (destination / "index.html").read_text() == "<!doctype html>"
    assert not (destination / "stale.js").exists()


def test_publish_moves_nothing_when_the_check_fails(tmp_path: Path, dist: Path) -> None:
    (dist / "evil").symlink_to("/etc/passwd")
    destination = make_tree(tmp_path / "out", {"index.html": "old"})
    with pytest.raises(BuildError):
        publish(dist, destination, LIMITS)
    assert (dist / "index.html").is_file()
    assert (destination / "index.html").read_text() == "old"


# ---------------------------------------------------------------- cache_control


@pytest.mark.parametrize(
    ("relative", "header"),
    [
        ("assets/index-abc123.js", IMMUTABLE),
        ("assets/fonts/x.woff2", IMMUTABLE),
        ("index.html", REVALIDATE),
        ("favicon.svg", REVALIDATE),
        ("assets", REVALIDATE),
        ("docs/assets/x.js", REVALIDATE),
    ],
)
def test_cache_control(relative: str, header: str) -> None:
    assert cache_control(relative) == header


def test_cache_headers() -> None:
    assert "immutable" in IMMUTABLE and "max-age=31536000" in IMMUTABLE
    assert REVALIDATE == "no-cache"


# -------------------------------------------------------------- resolve_preview


@pytest.mark.parametrize(
    ("url_path", "relative"),
    [
        ("/", "index.html"),
        ("", "index.html"),
        ("/index.html", "index.html"),
        ("/assets/index-abc123.js", "assets/index-abc123.js"),
        ("/./assets//index-abc123.js", "assets/index-abc123.js"),
        ("/docs", "docs/index.html"),
        ("/docs/", "docs/index.html"),
        ("/docs/guide/page.html", "docs/guide/page.html"),
        ("/dashboard", "index.html"),
        ("/users/42/settings", "index.html"),
        ("/docs/guide", "index.html"),  # folder without index.html: SPA fallback
    ],
)
def test_resolve_preview_finds_files(dist: Path, url_path: str, relative: str) -> None:
    assert resolve_preview(dist, url_path) == (dist / relative, relative)


@pytest.mark.parametrize(
    "url_path",
    [
        "/assets/missing.js",
        "/missing.png",
        "/docs/guide/missing.html",
        "/..",
        "/../dist/index.html",
        "/../../etc/passwd",
        "/assets/../../secret.txt",
        "/assets/../index.html",
        "/a\x00b",
    ],
)
def test_resolve_preview_refuses(dist: Path, url_path: str) -> None:
    assert resolve_preview(dist, url_path) is None


@pytest.mark.parametrize(
    "url_path",
    [
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2fsecret.txt",
        "/..%2f..%2fsecret.txt",
        "/..\\..\\secret.txt",
        "//secret.txt",
        "/./../secret.txt",
        "/....//secret.txt",
    ],
)
def test_resolve_preview_never_leaves_root(tmp_path: Path, dist: Path, url_path: str) -> None:
    (tmp_path / "secret.txt").write_text("s3cr3t")
    found = resolve_preview(dist, url_path)
    assert found is None or found[0].resolve().is_relative_to(dist.resolve())
    assert found is None or found[0].read_text() != "s3cr3t"


def test_symlinked_file_pointing_outside_is_not_served(tmp_path: Path, dist: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cr3t")
    (dist / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (dist / "leak").symlink_to(tmp_path / "secret.txt")
    assert resolve_preview(dist, "/leak.txt") is None
    assert resolve_preview(dist, "/leak") == (dist / "index.html", "index.html")


def test_symlinked_folder_pointing_outside_is_not_served(tmp_path: Path, dist: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"index.html": "s3cr3t", "secret.txt": "s3cr3t"})
    (dist / "sub").symlink_to(outside, target_is_directory=True)
    assert resolve_preview(dist, "/sub/secret.txt") is None
    assert resolve_preview(dist, "/sub") is None
    assert resolve_preview(dist, "/sub/index.html") is None


def test_no_index_means_no_fallback(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "dist", {"app.js": "x"})
    assert resolve_preview(root, "/") is None
    assert resolve_preview(root, "/route") is None
    assert resolve_preview(root, "/app.js") == (root / "app.js", "app.js")


@pytest.mark.parametrize("url_path", ["/" + "a" * 300, "/" + "a" * 300 + ".js", "/a" * 2100])
def test_overlong_paths_are_not_errors(dist: Path, url_path: str) -> None:
    found = resolve_preview(dist, url_path)  # a 404 or the SPA fallback, not an exception
    assert found is None or found == (dist / "index.html", "index.html")
