"""Host-side mounts into a folder that project code has written to, without following links.

A started container's workspace (``pool``) gets its build's files by mounts made on the
host, which reach the container by propagation. The folders under it (the app's folder,
its ``node_modules``) were written by project code, which may have made any of them a
link to a host path; a mount made through such a link would land on the host. So a mount
target is opened one name at a time with ``O_NOFOLLOW`` (a link there is refused), and
the mount is made on that very folder (its descriptor), never on a path that is looked up
again.

A read-only bind (``bind_read_only``) is made with the kernel's new mount calls (a detached
copy of the tree, made read-only, then attached): a bind made writable and remounted
read-only, as ``mount --bind -o ro`` does, reaches containers still writable, because a
remount does not propagate.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import SandboxError

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MS_REMOUNT = 0x20
MS_MOVE = 0x2000
MS_RDONLY = 0x1
MS_NOATIME = 0x400
MNT_DETACH = 0x2
# open_tree(2), move_mount(2), mount_setattr(2): the same numbers on x86_64 and arm64
SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC = 0x1, os.O_CLOEXEC
AT_EMPTY_PATH, AT_FDCWD = 0x1000, -100
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x4, 0x40
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _call(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(errno)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); SandboxError with the kernel's reason."""
    _call(
        _libc.mount(
            source.encode(),
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


class _MountAttr(ctypes.Structure):
    _fields_ = [  # ctypes reads this class attribute
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(number, *args))
    if result < 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"mount call {number} failed: {os.strerror(errno)}")
    return result


def bind_read_only(source: Path, target_fd: int) -> None:
    """Bind ``source`` read-only (and nosuid, nodev) on the folder open as ``target_fd``;
    the copies this mount propagates to are read-only too."""
    tree = _syscall(
        SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
    )
    try:
        attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
        _syscall(
            SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr), ctypes.sizeof(attr)
        )
        flags = MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH
        _syscall(SYS_MOVE_MOUNT, tree, b"", target_fd, b"", flags)
    finally:
        os.close(tree)


def move(source: Path, target: Path) -> None:
    """Move the mount at ``source`` to ``target`` (no sync, nothing unmounted)."""
    mount(str(source), str(target), None, MS_MOVE)


def make_read_only(target: Path, flags: int = MS_NOSUID | MS_NODEV | MS_NOATIME) -> None:
    """Make the mount at ``target`` read-only for every path to it, without remounting its
    filesystem (which would first write back all it holds)."""
    mount("none", str(target), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)


def detach(target: Path) -> None:
    """Lazily unmount the top mount at ``target`` and everything mounted below it."""
    _call(_libc.umount2(str(target).encode(), MNT_DETACH), f"umount {target}")


def mounts_at(target: Path) -> int:
    """How many mounts are stacked on ``target`` (from this process's mount table)."""
    wanted = os.fsencode(str(target))
    count = 0
    with open("/proc/self/mountinfo", "rb") as table:
        for line in table:
            fields = line.split(b" ")
            if len(fields) > 4 and _unescape(fields[4]) == wanted:
                count += 1
    return count


def _unescape(path: bytes) -> bytes:
    # mountinfo writes space, tab, newline and backslash as octal escapes (\040 ...)
    return path.decode("unicode_escape").encode("latin-1") if b"\\" in path else path


def make_shared_mount_point(folder: Path) -> None:
    """Make ``folder`` a mount point of its own whose later mounts (in it and below it)
    reach containers that bind it, or a folder in it, with ``rslave`` propagation."""
    folder.mkdir(parents=True, exist_ok=True)
    if mounts_at(folder) == 0:
        mount(str(folder), str(folder), None, MS_BIND)
    mount("none", str(folder), None, MS_SHARED)


@dataclass(frozen=True)
class Folder:
    """A folder held open (``O_PATH``): its descriptor, and the path that is that folder."""

    fd: int

    @property
    def path(self) -> str:
        return f"/proc/self/fd/{self.fd}"


@contextlib.contextmanager
def folder_beneath(root: Path, relative: str, *, make_last: bool = False) -> Iterator[Folder]:
    """The folder ``relative`` under ``root``, reached without following a link
    (SandboxError when a name on the way is a link or not a folder).

    ``make_last``: create the last folder when it is missing (as ``docker`` makes a mount
    point that is not there)."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise SandboxError(f"refusing a mount point outside the workspace: {relative}")
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags)
    try:
        for index, name in enumerate(parts):
            try:
                child = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                if not (make_last and index == len(parts) - 1):
                    raise SandboxError(f"no folder {relative} in the workspace") from None
                os.mkdir(name, 0o755, dir_fd=fd)
                child = os.open(name, flags, dir_fd=fd)
            except OSError as exc:  # ELOOP (a link), ENOTDIR (a file)
                raise SandboxError(f"{relative} in the workspace is not a folder: {exc}") from exc
            os.close(fd)
            fd = child
        yield Folder(fd)
    finally:
        os.close(fd)
