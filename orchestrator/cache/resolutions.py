"""Dependency resolutions of projects without a usable lockfile, kept for a while.

Generated projects often come without package-lock.json. Kiln resolves their dependency
ranges once (``npm install --package-lock-only``), keeps the lockfile under the key of
those ranges for ``ttl_s`` seconds, and keys their layer by that lockfile, so an identical
package.json within the TTL gets the same layer without asking the registry again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

SUFFIX = ".package-lock.json"


class ResolutionStore:
    """Resolved lockfiles under one folder, fresh for ``ttl_s`` seconds after they were made."""

    def __init__(self, root: Path, ttl_s: int) -> None:
        self.root = root
        self.ttl_s = ttl_s

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"not a resolution key: {key!r}")
        return self.root / f"{key}{SUFFIX}"

    def get(self, key: str) -> bytes | None:
        """The lockfile resolved under ``key``, if it is younger than the TTL."""
        path = self._path(key)
        try:
            if time.time() - path.stat().st_mtime > self.ttl_s:
                return None
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, lockfile: bytes) -> None:
        """Keep a fresh resolution (atomically replacing an older one)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(lockfile)
        os.replace(tmp, self._path(key))

    def prune(self) -> int:
        """Delete expired resolutions; returns how many."""
        removed = 0
        for path in self.root.glob(f"*{SUFFIX}") if self.root.is_dir() else []:
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > self.ttl_s:
                    path.unlink()
                    removed += 1
        return removed
