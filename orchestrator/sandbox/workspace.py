"""A build's workspace: its own small filesystem, so a build cannot fill the host's disk.

Each workspace is an ext4 image file mounted (loop, nosuid, nodev) at ``work/<id>``; when
it is full, writes inside fail with ENOSPC and nothing else on the host notices. Making
one takes a few tens of milliseconds. With ``workspace_mb = 0`` (hosts where the worker
cannot mount) the workspace is a plain folder and the disk limit is not enforced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from orchestrator.errors import SandboxError

MKFS_OPTIONS = [
    "-q",
    "-F",
    "-m",
    "0",
    "-i",
    "8192",
    "-O",
    "^has_journal",
    "-E",
    "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
]
MOUNT_OPTIONS = "loop,nosuid,nodev,noatime"


def image_path(folder: Path) -> Path:
    """The image file behind a workspace folder."""
    return folder.with_name(folder.name + ".img")


def create(folder: Path, size_mb: int) -> None:
    """Make an empty workspace at ``folder`` holding at most ``size_mb`` MiB."""
    remove(folder)
    folder.mkdir(parents=True)
    if size_mb <= 0:
        return
    image = image_path(folder)
    try:
        with image.open("wb") as sparse:
            sparse.truncate(size_mb * 1024 * 1024)
        run_root_command("mkfs.ext4", *MKFS_OPTIONS, str(image))
        mount_image(image, folder, MOUNT_OPTIONS)
    except (OSError, SandboxError) as exc:
        image.unlink(missing_ok=True)
        raise SandboxError(
            f"could not make the build's {size_mb} MB workspace ({exc}); the worker must run "
            "as root to mount it, or set KILN_WORKSPACE_MB=0 to go without a disk limit"
        ) from exc
    (folder / "lost+found").rmdir()


def mount_image(image: Path, folder: Path, options: str, attempts: int = 5) -> None:
    """Loop-mount a filesystem image at ``folder``, retrying the loop-device race."""
    # Concurrent `mount -o loop` calls can pick the same free loop device; one of them then
    # fails with "already mounted or mount point busy". Trying again takes another device.
    for attempt in range(attempts):
        try:
            run_root_command("mount", "-o", options, str(image), str(folder))
            return
        except SandboxError:
            if os.path.ismount(folder) or attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def remove(folder: Path) -> None:
    """Unmount and delete a workspace (and its image); a missing one is fine."""
    unmount(folder)
    shutil.rmtree(folder, ignore_errors=True)
    image_path(folder).unlink(missing_ok=True)


def unmount(folder: Path) -> None:
    """Detach whatever is mounted at ``folder`` (lazily: a process still in it keeps it)."""
    if os.path.ismount(folder):
        run_root_command("umount", "--lazy", str(folder))


def is_full(folder: Path, slack_bytes: int = 1024 * 1024) -> bool:
    """True when a mounted workspace has (almost) no space left."""
    if not os.path.ismount(folder):
        return False
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize < slack_bytes or stats.f_favail == 0


def run_root_command(*argv: str) -> None:
    """Run a host command the worker needs root for (mkfs, mount, umount); SandboxError,
    with the command's own complaint, when it fails or hangs for a minute."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{argv[0]} failed: {exc}") from exc
    if result.returncode != 0:
        raise SandboxError(f"{argv[0]} failed: {result.stderr.strip()[:300]}")
