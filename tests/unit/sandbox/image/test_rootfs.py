"""Unit tests for orchestrator.sandbox.image.rootfs's pure parts (no debootstrap, no root)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SandboxImageError
from orchestrator.sandbox.image import rootfs
from orchestrator.sandbox.image.rootfs import detect_mirror

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
    assert detect_mirror(tmp_path) == rootfs.DEFAULT_MIRROR
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
    rootfs._compose_rootfs(base, node, npm, b"fund=false\n", out)

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
        rootfs._compose_rootfs(base, node, node, b"", tmp_path / "out.tar")


def test_compose_rootfs_places_other_nodes_and_managers(tmp_path: Path) -> None:
    from orchestrator.project.environment import Manager

    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as t:
        _add(t, "etc")
    node = tmp_path / "node.tgz"
    with tarfile.open(node, "w:gz") as t:
        _add(t, "package/bin/node", b"\x7fELF22", mode=0o644)
    node24 = tmp_path / "node24.tgz"
    with tarfile.open(node24, "w:gz") as t:
        _add(t, "package/bin/node", b"\x7fELF24", mode=0o644)
    npm = tmp_path / "npm.tgz"
    with tarfile.open(npm, "w:gz") as t:
        _add(t, "package/bin/npm-cli.js", b"#!/usr/bin/env node\n")
    pnpm = tmp_path / "pnpm.tgz"
    with tarfile.open(pnpm, "w:gz") as t:
        _add(t, "package/bin/pnpm.cjs", b"#!/usr/bin/env node\n", mode=0o644)
        _add(t, "package/bin/pnpx.cjs", b"#!/usr/bin/env node\n", mode=0o644)
        _add(t, "package/dist/pnpm.cjs", b"x", mode=0o644)
    out = tmp_path / "out.tar"
    rootfs._compose_rootfs(
        base,
        node,
        npm,
        b"",
        out,
        default_major=22,
        other_nodes={24: node24},
        managers={Manager.PNPM: pnpm},
    )
    with tarfile.open(out) as t:
        members = {m.name: m for m in t.getmembers()}
        assert members["opt/kiln/node/22/bin/node"].linkname == "/usr/local/bin/node"
        node24_bin = members["opt/kiln/node/24/bin/node"]
        assert node24_bin.mode == 0o755
        fh = t.extractfile(node24_bin)
        assert fh is not None and fh.read() == b"\x7fELF24"
        assert members["opt/kiln/managers/pnpm/bin/pnpm"].linkname == "../pkg/bin/pnpm.cjs"
        assert members["opt/kiln/managers/pnpm/pkg/bin/pnpm.cjs"].mode == 0o755
        assert members["opt/kiln/managers/pnpm/pkg/dist/pnpm.cjs"].mode == 0o644
        names = [m.name for m in t.getmembers()]
        assert len(names) == len(set(names))


def test_compose_rootfs_rejects_a_manager_without_its_program(tmp_path: Path) -> None:
    from orchestrator.project.environment import Manager

    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as t:
        _add(t, "etc")
    node = tmp_path / "node.tgz"
    with tarfile.open(node, "w:gz") as t:
        _add(t, "package/bin/node", b"x")
    npm = tmp_path / "npm.tgz"
    with tarfile.open(npm, "w:gz") as t:
        _add(t, "package/bin/npm-cli.js", b"x")
    empty = tmp_path / "bun.tgz"
    with tarfile.open(empty, "w:gz") as t:
        _add(t, "package/README.md", b"x")
    with pytest.raises(SandboxImageError, match="bin/bun"):
        rootfs._compose_rootfs(
            base, node, npm, b"", tmp_path / "o.tar", managers={Manager.BUN: empty}
        )
