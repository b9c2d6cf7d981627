"""Host-side mounts into a folder that project code has written to, without following links.

A started container's workspace (``pool``) gets its build's files by mounts made on the
host. The folders under it (the app's folder, its ``node_modules``) were written by
project code, which may have made any of them a link to a host path; a mount made through
such a link would land on the host. So a mount target is opened one name at a time with
``O_NOFOLLOW`` (a link there is refused), and the mount is made on ``/proc/self/fd/N``,
the very folder opened, never on a path that is looked up again.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import SandboxError

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

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
    """Make ``folder`` a mount point of its own whose later mounts reach containers that
    bind it with ``rslave`` propagation (done once per folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    if mounts_at(folder) == 0:
        mount(str(folder), str(folder), None, MS_BIND)
    mount("none", str(folder), None, MS_SHARED)


@contextlib.contextmanager
def folder_beneath(root: Path, relative: str, *, make_last: bool = False) -> Iterator[str]:
    """``/proc/self/fd/N`` of the folder ``relative`` under ``root``, reached without
    following a link (SandboxError when a name on the way is a link or not a folder).

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
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)
