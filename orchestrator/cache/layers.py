"""Dependency layers on disk: one per key, made once under a disk limit, then only read.

    <root>/<key>.json          the layer's metadata, written last: a layer exists once this
                               does; its mtime is the layer's last use (LRU eviction)
    <root>/<key>.img           the layer's own ext4 image (when ``image_mb`` > 0) ...
    <root>/<key>/              ... mounted here read-only (loop, nosuid, nodev); without an
                               image, a plain folder
    <root>/<key>/node_modules  what builds see, read-only, at /workspace/node_modules
    <root>/<key>.lock          flock: shared while a build uses the layer, exclusive while
                               it is made or evicted
    <root>/.staging/           layers (and resolutions) being made; never looked up

A layer is made in a staging folder that is, like a build's workspace, its own small
filesystem of ``image_mb`` MiB (so a lockfile full of huge packages fills that, not the
host's disk); committing it unmounts the image and mounts it read-only under its key, so
not even a mistaken read-write bind mount could change it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cache.keys import KEY_CHARS
from orchestrator.errors import SandboxError
from orchestrator.sandbox import mounts, workspace
from orchestrator.sandbox.runner import SCRATCH_DIRS
from orchestrator.settings import Settings

NODE_MODULES = "node_modules"
STAGING = ".staging"
TRASH = ".trash"
LOCK_POLL_S = 0.2
READ_ONLY_MOUNT = "loop,ro,nosuid,nodev,noatime"


@dataclass(frozen=True)
class LayerInfo:
    """One layer on disk."""

    key: str
    path: Path
    size_bytes: int
    files: int
    created: float
    last_used: float


def disk_usage(root: Path) -> tuple[int, int]:
    """(bytes on disk, entries) of a tree, without following links."""
    size = count = 0
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            try:
                info = os.lstat(os.path.join(current, name))
            except FileNotFoundError:
                continue
            size += info.st_blocks * 512
            count += 1
    return size, count


def filesystem_usage(root: Path) -> tuple[int, int]:
    """(bytes in use, inodes in use) of the filesystem mounted at ``root``."""
    stats = os.statvfs(root)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize, stats.f_files - stats.f_ffree


def _mount_read_only(image: Path, folder: Path) -> None:
    workspace.mount_image(image, folder, READ_ONLY_MOUNT)


class KeyLock:
    """An flock on one key's lock file; shared for users, exclusive for makers and eviction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd: int | None = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)

    def acquire(self, *, exclusive: bool, wait: Callable[[], None] | None = None) -> bool:
        """Take the lock (converting a held one); without ``wait``, try once and say if it worked.

        ``wait`` is called between attempts and may raise to give up (a cancelled build).
        """
        assert self.fd is not None
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(self.fd, mode)
                return True
            except BlockingIOError:
                if wait is None:
                    return False
                wait()
                time.sleep(LOCK_POLL_S)

    def release(self) -> None:
        """Drop the lock and close the file."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LayerStore:
    """The layers under one folder; ``image_mb`` > 0 makes each one its own ext4 image."""

    def __init__(self, root: Path, image_mb: int = 0) -> None:
        self.root = root
        self.image_mb = image_mb

    def _key(self, key: str) -> str:
        if len(key) != KEY_CHARS or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a layer key: {key!r}")
        return key

    def _meta(self, key: str) -> Path:
        return self.root / f"{self._key(key)}.json"

    def lock(self, key: str) -> KeyLock:
        """A lock handle for ``key`` (not yet held)."""
        return KeyLock(self.root / f"{self._key(key)}.lock")

    def lookup(self, key: str) -> Path | None:
        """The layer's node_modules if it is there (and mark it used), else None.

        Call with the key's lock held (shared is enough): a layer whose image is not
        mounted (after a reboot) is mounted here.
        """
        meta = self._meta(key)
        if not meta.is_file():
            return None
        folder = self.root / key
        image = workspace.image_path(folder)
        if image.is_file() and not os.path.ismount(folder):
            mounting = KeyLock(self.root / f"{key}.mount.lock")
            try:
                mounting.acquire(exclusive=True, wait=lambda: None)
                if not os.path.ismount(folder):
                    folder.mkdir(exist_ok=True)
                    _mount_read_only(image, folder)
            finally:
                mounting.release()
        with contextlib.suppress(OSError):
            os.utime(meta)
        return folder / NODE_MODULES

    def new_staging(self, key: str) -> Path:
        """A fresh, empty folder (its own filesystem when ``image_mb`` > 0) to make a layer in."""
        folder = self.root / STAGING / f"{self._key(key)}-{secrets.token_hex(4)}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        workspace.create(folder, self.image_mb)
        return folder

    def commit(self, key: str, staging: Path, details: dict[str, Any]) -> Path:
        """Put a made layer in place under ``key`` (read-only); returns its node_modules."""
        modules = staging / NODE_MODULES
        modules.mkdir(exist_ok=True)  # a project with no dependencies still gets a layer
        for name in SCRATCH_DIRS:  # mount points for the builds' private tmpfs folders
            scratch = modules / name
            if scratch.is_symlink() or (scratch.exists() and not scratch.is_dir()):
                scratch.unlink()  # a package's script made it; a mount point must be a folder
            elif scratch.is_dir():
                shutil.rmtree(scratch)  # whatever is here would only be hidden by the tmpfs
            scratch.mkdir()
        target = self.root / self._key(key)
        if self._meta(key).is_file():  # made meanwhile (the caller should hold the lock)
            self.discard(staging)
            return target / NODE_MODULES
        self._remove_files(key)  # leftovers of a crash between the steps below
        image = workspace.image_path(staging)
        if os.path.ismount(staging):
            # Its own filesystem: counted from the filesystem itself, moved (not unmounted,
            # which would first write back all of it) and made read-only for every path
            # to it. A later mount after a reboot mounts the image read-only itself.
            size, files = filesystem_usage(staging)
            os.rename(image, workspace.image_path(target))
            target.mkdir()
            try:
                mounts.move(staging, target)
                mounts.make_read_only(target)
            except SandboxError:  # a move from under a shared mount: the kernel refuses it
                # unmounted in full (written back) before the image is mounted again
                for folder in (staging, target):
                    if os.path.ismount(folder):
                        workspace.run_root_command("umount", str(folder))
                _mount_read_only(workspace.image_path(target), target)
            staging.rmdir()
        else:
            size, files = disk_usage(staging)
            os.rename(staging, target)
        meta = {"key": key, "created": time.time(), "size_bytes": size, "files": files, **details}
        tmp = self.root / f".{key}.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self._meta(key))  # the commit point
        return target / NODE_MODULES

    def discard(self, staging: Path) -> None:
        """Throw away a layer (or resolution) folder that is no longer needed."""
        try:
            workspace.remove(staging)
        except SandboxError:
            shutil.rmtree(staging, ignore_errors=True)

    def entries(self) -> list[LayerInfo]:
        """Every committed layer."""
        found = []
        for meta_path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            key = meta_path.stem
            if len(key) != KEY_CHARS:
                continue
            try:
                meta = json.loads(meta_path.read_text())
                last_used = meta_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            found.append(
                LayerInfo(
                    key=key,
                    path=self.root / key,
                    size_bytes=int(meta.get("size_bytes", 0)),
                    files=int(meta.get("files", 0)),
                    created=float(meta.get("created", 0)),
                    last_used=last_used,
                )
            )
        return found

    def remove(self, key: str) -> bool:
        """Delete a layer no build is using; False when one is (or it is being made)."""
        lock = self.lock(key)
        try:
            if not lock.acquire(exclusive=True):
                return False
            self._meta(key).unlink(missing_ok=True)  # gone for lookups from here on
            self._remove_files(key)
        finally:
            lock.release()
        return True

    def _remove_files(self, key: str) -> None:
        folder = self.root / self._key(key)
        workspace.unmount(folder)
        workspace.image_path(folder).unlink(missing_ok=True)
        if folder.exists():
            trash = self.root / TRASH / f"{key}-{secrets.token_hex(4)}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def unmount_all(self) -> int:
        """Unmount every layer image (they stay on disk; a lookup mounts one again) and
        every staging filesystem (left by a maker that was stopped midway)."""
        staging = self.root / STAGING
        folders = [entry.path for entry in self.entries()]
        folders += [p for p in staging.iterdir()] if staging.is_dir() else []
        count = 0
        for folder in folders:
            if os.path.ismount(folder):
                workspace.unmount(folder)
                count += 1
        return count

    def sweep_leftovers(self, older_than_s: float = 3600) -> int:
        """Delete staging and trash folders left by crashed workers; returns how many."""
        removed = 0
        now = time.time()
        for parent in (self.root / STAGING, self.root / TRASH):
            for entry in parent.iterdir() if parent.is_dir() else []:
                with contextlib.suppress(OSError, SandboxError):
                    if now - entry.stat().st_mtime > older_than_s and entry.is_dir():
                        self.discard(entry)
                        removed += 1
        return removed


def layer_store(settings: Settings) -> LayerStore:
    """The server's layers: each its own image of ``workspace_mb`` (0: plain folders)."""
    return LayerStore(settings.layers_dir, image_mb=settings.workspace_mb)
