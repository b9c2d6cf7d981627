"""The Debian root filesystem the image is imported from when no registry is reachable.

Finding the host's Debian mirror, running ``debootstrap --variant=minbase``
(its result cached as a tarball in the work directory), detaching whatever it
left mounted, pruning caches and documentation, and composing the final root
filesystem tar: the Debian root plus Node, npm, the global npmrc and the
``kiln`` user's passwd/group entries. Needs ``debootstrap`` and root.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from orchestrator.errors import SandboxImageError
from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.layout import (
    KILN_GID,
    KILN_HOME,
    KILN_UID,
    KILN_USER,
    SUITE,
    WORKSPACE,
    Log,
)
from orchestrator.sandbox.image.toolchains import MANAGER_BINS, manager_dir, node_dir

DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Bumped when the cached debootstrap tarball's content would change.
_ROOTFS_FORMAT = "2"  # 2: libatomic1, which Node 26 needs

# Removed from the debootstrapped root: package caches, documentation and
# logs. Paths are relative to the root; the directories themselves are kept.
_ROOTFS_PRUNE = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/cache/debconf",
    "var/log",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/linda",
    "tmp",
)
# Host files debootstrap copies in; Docker supplies its own at run time.
_ROOTFS_BLANK = ("etc/resolv.conf", "etc/hostname")
# Directories whose contents are never put in the image (Docker mounts them).
_ROOTFS_SKIP_CONTENTS = ("dev", "proc", "sys")
# Parts of the npm package the image does not need.
_NPM_PRUNE_TOPLEVEL = ("docs", "man")


def detect_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror URL the host's apt uses, or the public default.

    Reads the deb822 ``sources.list.d/*.sources`` files and the classic
    ``sources.list``, taking the first ``debian`` archive (not
    ``debian-security``) that lists the bookworm suite.
    """
    candidates = [*_deb822_uris(sources_dir), *_classic_uris(sources_dir)]
    for uri in candidates:
        if uri.startswith(("http://", "https://")) and "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _deb822_uris(sources_dir: Path) -> list[str]:
    """URIs of the deb822 stanzas (``sources.list.d/*.sources``) that list :data:`SUITE`."""
    uris: list[str] = []
    for src in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in src.read_text().split("\n\n"):
                fields = _stanza_fields(stanza)
                if SUITE in fields.get("suites", "").split():
                    uris.extend(fields.get("uris", "").split())
    return uris


def _stanza_fields(stanza: str) -> dict[str, str]:
    """A deb822 stanza's ``Key: value`` lines, keys lower-cased; comments and folds skipped."""
    fields: dict[str, str] = {}
    for line in stanza.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith((" ", "#")):
            fields[key.strip().lower()] = value.strip()
    return fields


def _classic_uris(sources_dir: Path) -> list[str]:
    """URIs of the classic ``sources.list`` ``deb`` lines for :data:`SUITE`."""
    uris: list[str] = []
    with contextlib.suppress(OSError):
        for line in (sources_dir / "sources.list").read_text().splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 3 and parts[0] == "deb":
                rest = [p for p in parts[1:] if not p.startswith("[")]  # drop [options]
                if len(rest) >= 2 and rest[1] == SUITE:
                    uris.append(rest[0])
    return uris


def _find_debootstrap() -> str:
    found = shutil.which("debootstrap")
    if found:
        return found
    for candidate in ("/usr/sbin/debootstrap", "/sbin/debootstrap"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise SandboxImageError(
        "no container registry and debootstrap is not installed: install it "
        "(apt-get install debootstrap) or make node:22-bookworm-slim available"
    )


def _debian_rootfs(work_dir: Path, mirror: str, deb_arch: str, log: Log) -> Path:
    """Return the cached debootstrap tarball, creating it if needed."""
    cached = work_dir / f"rootfs-{SUITE}-{deb_arch}-minbase-v{_ROOTFS_FORMAT}.tar"
    if cached.is_file():
        log(f"using cached Debian {SUITE} root ({cached.name})")
        return cached
    debootstrap = _find_debootstrap()
    if os.geteuid() != 0:
        raise SandboxImageError(
            "building the sandbox image without a registry runs debootstrap, "
            "which needs root; run as root or make node:22-bookworm-slim available"
        )
    root = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=work_dir))
    log_path = work_dir / f"debootstrap-{SUITE}.log"
    try:
        log(f"debootstrap {SUITE} from {mirror} (about 25 s)...")
        t0 = time.monotonic()
        cmd = [
            debootstrap,
            "--variant=minbase",
            "--include=ca-certificates,libatomic1",
            f"--arch={deb_arch}",
            SUITE,
            str(root),
            mirror,
        ]
        with open(log_path, "wb") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-10:]
            raise SandboxImageError(
                f"debootstrap failed (exit {proc.returncode}); see {log_path}:\n" + "\n".join(tail)
            )
        log(f"debootstrap done in {time.monotonic() - t0:.0f} s")
        _unmount_under(root)
        _prune_rootfs(root)
        tmp = cached.with_suffix(f".part{os.getpid()}")
        _tar_tree(root, tmp)
        tmp.replace(cached)
        log(f"cached Debian root as {cached} ({cached.stat().st_size / 1e6:.0f} MB)")
        return cached
    finally:
        _unmount_under(root)
        if _mounts_under(root):
            log(f"leaving {root} in place: something is still mounted under it")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) < 5:
                continue
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                found.append(point)
    return found


def _unmount_under(root: Path) -> None:
    """Detach anything debootstrap left mounted inside ``root`` (deepest first)."""
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def _prune_rootfs(root: Path) -> None:
    for rel in _ROOTFS_PRUNE:
        d = root / rel
        if not d.is_dir() or d.is_symlink():
            continue
        for child in d.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    # apt expects these to exist.
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (root / rel).mkdir(parents=True, exist_ok=True)


def _tar_tree(root: Path, dest: Path) -> None:
    """Write ``root`` as an uncompressed tar with numeric ownership."""

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            if rel_dir in _ROOTFS_SKIP_CONTENTS:
                dirnames.clear()  # keep the (empty) mount point, not its contents
                continue
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                arc = name if rel_dir == "." else f"{rel_dir}/{name}"
                tar.add(os.path.join(dirpath, name), arcname=arc, recursive=False, filter=clean)


def _add_dir(
    tar: tarfile.TarFile, name: str, uid: int = 0, gid: int = 0, mode: int = 0o755
) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = int(time.time())
    tar.addfile(info)


def _add_bytes(
    tar: tarfile.TarFile,
    name: str,
    data: bytes,
    *,
    template: tarfile.TarInfo | None = None,
    mode: int = 0o644,
) -> None:
    info = tarfile.TarInfo(name)
    if template is not None:
        info.mode, info.uid, info.gid = template.mode, template.uid, template.gid
    else:
        info.mode = mode
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    info.mtime = int(time.time())
    tar.addfile(info)


def _account_lines() -> dict[str, bytes]:
    """Lines appended to the account databases for the kiln user."""
    return {
        "etc/passwd": f"{KILN_USER}:x:{KILN_UID}:{KILN_GID}::{KILN_HOME}:/bin/sh\n".encode(),
        "etc/group": f"{KILN_USER}:x:{KILN_GID}:\n".encode(),
        "etc/shadow": f"{KILN_USER}:*:19000:0:99999:7:::\n".encode(),
        "etc/gshadow": f"{KILN_USER}:!::\n".encode(),
    }


def _package_members(tgz: tarfile.TarFile) -> Iterator[tuple[str, tarfile.TarInfo]]:
    """Yield (path without the top-level folder, member) for regular content."""
    for member in tgz:
        parts = member.name.lstrip("/").split("/", 1)
        if len(parts) < 2 or not parts[1] or ".." in parts[1].split("/"):
            continue
        yield parts[1].rstrip("/"), member


def _compose_rootfs(
    base_tar: Path,
    node_tgz: Path,
    npm_tgz: Path,
    npmrc: bytes,
    out: Path,
    *,
    default_major: int | None = None,
    other_nodes: Mapping[int, Path] | None = None,
    managers: Mapping[Manager, Path] | None = None,
) -> None:
    """Write the image tar: the Debian root plus user, Node, npm and npmrc.

    ``node_tgz`` is the default Node (``/usr/local/bin/node``, also reachable as
    ``/opt/kiln/node/<default_major>``); ``other_nodes`` go beside it under
    ``/opt/kiln/node/<major>``, ``managers`` (their npm package tarballs) under
    ``/opt/kiln/managers/<manager>``. Mirrors ``sandbox_images/node/Dockerfile``; keep the
    two in step.
    """
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        dirs = _Dirs(dst, _copy_base(dst, base_tar))
        _add_kiln_dirs(dst, dirs)
        _add_default_node(dst, node_tgz, dirs)
        _add_npm(dst, npm_tgz, npmrc, dirs)
        if default_major is not None:
            folder = f"{node_dir(default_major).lstrip('/')}/bin"
            dirs.ensure(folder)
            _add_symlink(dst, f"{folder}/node", "/usr/local/bin/node")
        for major, tarball in sorted((other_nodes or {}).items()):
            _add_other_node(dst, major, tarball, dirs)
        for manager, tarball in sorted((managers or {}).items()):
            _add_manager(dst, manager, tarball, dirs.ensure)


class _Dirs:
    """The directories the image tar holds, adding missing parents before their children."""

    def __init__(self, dst: tarfile.TarFile, seen: set[str]) -> None:
        self._dst = dst
        self.seen = seen

    def ensure(self, path: str) -> None:
        """Add ``path`` and any missing parents as root-owned directories."""
        parent = path.rpartition("/")[0]
        if parent:
            self.ensure(parent)
        if path not in self.seen:
            _add_dir(self._dst, path)
            self.seen.add(path)


def _copy_base(dst: tarfile.TarFile, base_tar: Path) -> set[str]:
    """Copy the Debian root into ``dst``; return the directories it holds.

    The account databases get the kiln user's lines appended (or are created when
    the base lacks them) and the host files in :data:`_ROOTFS_BLANK` are emptied.
    """
    appends = _account_lines()
    seen_dirs: set[str] = set()
    with tarfile.open(base_tar, "r") as base:
        for member in base:
            name = member.name.removeprefix("./").rstrip("/")
            if member.isdir():
                seen_dirs.add(name)
            if not member.isfile():
                dst.addfile(member)
            elif name in appends:
                data = _with_final_newline(_read_member(base, member))
                _add_bytes(dst, name, data + appends.pop(name), template=member)
            elif name in _ROOTFS_BLANK:
                _add_bytes(dst, name, b"", template=member)
            else:
                dst.addfile(member, base.extractfile(member))
    for name, data in appends.items():  # database missing from the base
        _add_bytes(dst, name, data, mode=0o640 if "shadow" in name else 0o644)
    return seen_dirs


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    return fh.read() if fh else b""


def _with_final_newline(data: bytes) -> bytes:
    return data + b"\n" if data and not data.endswith(b"\n") else data


def _add_kiln_dirs(dst: tarfile.TarFile, dirs: _Dirs) -> None:
    """The kiln user's home and the workspace, owned by that user."""
    for path in (KILN_HOME, WORKSPACE):
        rel = path.lstrip("/")
        parent = rel.rpartition("/")[0]
        if parent:
            dirs.ensure(parent)
        _add_dir(dst, rel, KILN_UID, KILN_GID, 0o755)
        dirs.seen.add(rel)


#: What the image takes from the default Node package: package path -> (image path, mode).
_NODE_FILES = {
    "bin/node": ("usr/local/bin/node", 0o755),
    "LICENSE": ("usr/local/share/doc/node/LICENSE", 0o644),
}


def _add_default_node(dst: tarfile.TarFile, node_tgz: Path, dirs: _Dirs) -> None:
    """Node's binary and its licence under ``/usr/local``."""
    dirs.ensure("usr/local/bin")
    dirs.ensure("usr/local/share/doc/node")
    got_node = False
    with tarfile.open(node_tgz, "r:gz") as tgz:
        for rel, member in _package_members(tgz):
            if rel not in _NODE_FILES or not member.isfile():
                continue
            member.name, member.mode = _NODE_FILES[rel]
            _own_root(member)
            dst.addfile(member, tgz.extractfile(member))
            got_node = got_node or rel == "bin/node"
    if not got_node:
        raise SandboxImageError(f"{node_tgz.name} has no bin/node")


def _add_npm(dst: tarfile.TarFile, npm_tgz: Path, npmrc: bytes, dirs: _Dirs) -> None:
    """The whole npm package (it bundles its dependencies) minus docs, its links and npmrc."""
    prefix = "usr/local/lib/node_modules/npm"
    dirs.ensure(prefix)
    got_cli = False
    with tarfile.open(npm_tgz, "r:gz") as tgz:
        for rel, member in _package_members(tgz):
            if rel.split("/", 1)[0] in _NPM_PRUNE_TOPLEVEL:
                continue
            if not (member.isfile() or member.isdir()):
                continue  # npm tarballs hold only files and directories
            dest = f"{prefix}/{rel}"
            dirs.ensure(dest.rpartition("/")[0])
            if member.isdir():
                dirs.ensure(dest)
                continue
            executable = rel.startswith("bin/") or bool(member.mode & 0o111)
            member.name, member.mode = dest, 0o755 if executable else 0o644
            _own_root(member)
            dst.addfile(member, tgz.extractfile(member))
            got_cli = got_cli or rel == "bin/npm-cli.js"
    if not got_cli:
        raise SandboxImageError(f"{npm_tgz.name} has no bin/npm-cli.js")
    _add_symlink(dst, "usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")
    _add_symlink(dst, "usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js")
    dirs.ensure("usr/local/etc")
    _add_bytes(dst, "usr/local/etc/npmrc", npmrc)


def _add_other_node(dst: tarfile.TarFile, major: int, tarball: Path, dirs: _Dirs) -> None:
    """Another Node major's binary under ``/opt/kiln/node/<major>/bin``."""
    folder = f"{node_dir(major).lstrip('/')}/bin"
    dirs.ensure(folder)
    with tarfile.open(tarball, "r:gz") as package:
        binary = next(
            (m for rel, m in _package_members(package) if rel == "bin/node" and m.isfile()),
            None,
        )
        if binary is None:
            raise SandboxImageError(f"{tarball.name} has no bin/node")
        binary.name, binary.mode = f"{folder}/node", 0o755
        _own_root(binary)
        dst.addfile(binary, package.extractfile(binary))


def _add_manager(
    dst: tarfile.TarFile, manager: Manager, tgz: Path, ensure_dir: Callable[[str], None]
) -> None:
    """A package manager's whole npm package under ``pkg/``, and links to it in ``bin/``."""
    root = manager_dir(manager).lstrip("/")
    prefix = f"{root}/pkg"
    ensure_dir(prefix)
    found: set[str] = set()
    with tarfile.open(tgz, "r:gz") as package:
        for rel, member in _package_members(package):
            if not (member.isfile() or member.isdir()):
                continue
            dest = f"{prefix}/{rel}"
            ensure_dir(dest.rpartition("/")[0])
            if member.isdir():
                ensure_dir(dest)
                continue
            executable = rel in MANAGER_BINS[manager].values() or bool(member.mode & 0o111)
            member.name, member.mode = dest, 0o755 if executable else 0o644
            _own_root(member)
            dst.addfile(member, package.extractfile(member))
            found.add(rel)
    ensure_dir(f"{root}/bin")
    for name, target in MANAGER_BINS[manager].items():
        if target not in found:
            raise SandboxImageError(f"{tgz.name} has no {target}")
        _add_symlink(dst, f"{root}/bin/{name}", f"../pkg/{target}")


def _own_root(member: tarfile.TarInfo) -> None:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.pax_headers = {}
