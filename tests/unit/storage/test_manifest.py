"""Unit tests for orchestrator.storage.manifest: the stored form and preview path mapping."""

from __future__ import annotations

import pytest

from orchestrator.storage.manifest import (
    IMMUTABLE,
    REVALIDATE,
    Entry,
    Manifest,
    cache_control,
    content_type,
)

FILES = [
    "index.html",
    "assets/index-abc123.js",
    "assets/index-abc123.css",
    "docs/index.html",
    "docs/guide/page.html",
    "empty/.keep",
]


def entry(path: str, size: int = 1) -> Entry:
    return Entry(path, size, content_type(path), f"{len(path):064x}")


@pytest.fixture()
def manifest() -> Manifest:
    return Manifest("b1", {p: entry(p) for p in FILES})


def test_round_trip(manifest: Manifest) -> None:
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest and again.folders == manifest.folders


def test_unknown_version_is_refused(manifest: Manifest) -> None:
    with pytest.raises(ValueError):
        Manifest.from_json(manifest.to_json().replace(b'"version": 1', b'"version": 9'))


def test_etag_is_quoted_content_hash() -> None:
    tag = Entry("a.js", 1, "text/javascript", "ab" * 32).etag
    assert tag == '"' + "ab" * 16 + '"'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("assets/a.js", "text/javascript; charset=utf-8"),
        ("assets/a.mjs", "text/javascript; charset=utf-8"),
        ("assets/a.css", "text/css; charset=utf-8"),
        ("logo.svg", "image/svg+xml"),
        ("logo.png", "image/png"),
        ("app.wasm", "application/wasm"),
        ("site.webmanifest", "application/manifest+json"),
        ("noextension", "application/octet-stream"),
    ],
)
def test_content_types(path: str, expected: str) -> None:
    assert content_type(path) == expected


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
        ("/empty", "index.html"),
    ],
)
def test_resolve_finds_files(manifest: Manifest, url_path: str, relative: str) -> None:
    found = manifest.resolve(url_path)
    assert found is not None and found.path == relative


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
        "/%2e%2e%2fsecret.txt",
        "/..\\..\\secret.txt",
    ],
)
def test_resolve_refuses(manifest: Manifest, url_path: str) -> None:
    assert manifest.resolve(url_path) is None


def test_no_index_means_no_fallback() -> None:
    bare = Manifest("b1", {"app.js": entry("app.js")})
    assert bare.resolve("/") is None
    assert bare.resolve("/route") is None
    found = bare.resolve("/app.js")
    assert found is not None and found.path == "app.js"
