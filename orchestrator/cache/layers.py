"""Dependency layers on disk: one folder per key, made once, then only ever mounted read-only.

    <root>/<key>/node_modules   the layer (what builds see at /workspace/node_modules)
    <root>/<key>/meta.json      written before the folder is renamed into place; its mtime
                                is the layer's last use (for LRU eviction)
    <root>/<key>.lock           flock: shared while a build uses the layer, exclusive while
                                it is made or evicted
    <root>/.staging/            layers being made; a half-made layer is never under <key>

A layer appears under its key by one rename, so a reader sees all of it or nothing.
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

from orchestrator.cache.keys import KEY_CHARS, SCRATCH_DIRS, Toolchain

META = "meta.json"
NODE_MODULES = "node_modules"
STAGING = ".staging"
TRASH = ".trash"
LOCK_POLL_S = 0.2


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


def image_toolchain(client: Any, image: str) -> Toolchain:
    """The toolchain of a sandbox image (Docker SDK client): its id, Node version, platform."""
    found = client.images.get(image)
    attrs = found.attrs or {}
    node = (found.labels or {}).get("kiln.node.version") or "unknown"
    platform = f"{attrs.get('Os', 'linux')}/{attrs.get('Architecture', 'unknown')}"
    return Toolchain(image_id=str(found.id), node_version=str(node), platform=platform)


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
    """The layers under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, key: str) -> Path:
        if len(key) != KEY_CHARS or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a layer key: {key!r}")
        return self.root / key

    def lock(self, key: str) -> KeyLock:
        """A lock handle for ``key`` (not yet held)."""
        return KeyLock(self.root / f"{self._dir(key).name}.lock")

    def lookup(self, key: str) -> Path | None:
        """The layer's node_modules if it is there (and mark it used), else None."""
        folder = self._dir(key)
        meta = folder / META
        if not meta.is_file():
            return None
        with contextlib.suppress(OSError):
            os.utime(meta)
        return folder / NODE_MODULES

    def new_staging(self, key: str) -> Path:
        """A fresh, empty folder in which to make the layer for ``key``."""
        folder = self.root / STAGING / f"{self._dir(key).name}-{secrets.token_hex(4)}"
        folder.mkdir(parents=True)
        return folder

    def commit(self, key: str, staging: Path, details: dict[str, Any]) -> Path:
        """Move a made layer into place under ``key``; returns its node_modules."""
        modules = staging / NODE_MODULES
        modules.mkdir(exist_ok=True)  # a project with no dependencies still gets a layer
        for name in SCRATCH_DIRS:  # mount points for the builds' private tmpfs folders
            scratch = modules / name
            if scratch.is_symlink() or (scratch.exists() and not scratch.is_dir()):
                scratch.unlink()  # a package's script made it; a mount point must be a folder
            elif scratch.is_dir():
                shutil.rmtree(scratch)  # whatever is here would only be hidden by the tmpfs
            scratch.mkdir()
        size, files = disk_usage(staging)
        meta = {"key": key, "created": time.time(), "size_bytes": size, "files": files, **details}
        (staging / META).write_text(json.dumps(meta, indent=1))
        target = self._dir(key)
        try:
            os.rename(staging, target)
        except OSError:  # someone else committed it first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
        return target / NODE_MODULES

    def discard(self, staging: Path) -> None:
        """Throw away a layer that could not be made."""
        shutil.rmtree(staging, ignore_errors=True)

    def entries(self) -> list[LayerInfo]:
        """Every committed layer."""
        found = []
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            meta_path = folder / META
            if folder.name.startswith(".") or not meta_path.is_file():
                continue
            try:
                meta = json.loads(meta_path.read_text())
                last_used = meta_path.stat().st_mtime
            except (OSError, ValueError):
                continue
            found.append(
                LayerInfo(
                    key=folder.name,
                    path=folder,
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
            folder = self._dir(key)
            if not folder.exists():
                return True
            trash = self.root / TRASH / f"{key}-{secrets.token_hex(4)}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, trash)  # gone for lookups at once; deleted below
        finally:
            lock.release()
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def sweep_leftovers(self, older_than_s: float = 3600) -> int:
        """Delete staging and trash folders left by crashed workers; returns how many."""
        removed = 0
        now = time.time()
        for parent in (self.root / STAGING, self.root / TRASH):
            for folder in parent.iterdir() if parent.is_dir() else []:
                with contextlib.suppress(OSError):
                    if now - folder.stat().st_mtime > older_than_s:
                        shutil.rmtree(folder, ignore_errors=True)
                        removed += 1
        return removed
