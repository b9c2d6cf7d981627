"""A bounded folder of files fetched from the object store, named by content hash.

The same bytes in many builds are kept once. Least recently used files go when the folder
passes its budget. Several API processes may share the folder: each keeps its own account
and evicts what it knows of; a file removed under another reader stays readable through
the handle it already has, and is fetched again on the next miss.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

HASH = re.compile(r"[0-9a-f]{64}")


class FileCache:
    """Files by SHA-256 under ``root``, at most ``max_bytes`` in all (as this process sees it)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self.total = 0
        self._adopt()

    def _adopt(self) -> None:
        """Count what earlier runs left (oldest first), so the budget holds across restarts."""
        if not self.root.is_dir():
            return
        found = []
        for path in self.root.iterdir():
            if HASH.fullmatch(path.name):
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    found.append((info.st_atime, path.name, info.st_size))
        for _, name, size in sorted(found):
            self._sizes[name] = size
            self.total += size
        self._evict()

    def path(self, sha256: str) -> Path:
        """Where the file with this hash is kept."""
        if not HASH.fullmatch(sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.root / sha256

    def get(self, sha256: str) -> Path | None:
        """The cached file, or None; a hit counts as a use."""
        path = self.path(sha256)
        with self._lock:
            if sha256 in self._sizes:
                self._sizes.move_to_end(sha256)
                if path.is_file():
                    return path
                self.total -= self._sizes.pop(sha256)
                return None
        if path.is_file():  # another process fetched it
            self._add(sha256, path.stat().st_size)
            return path
        return None

    def fill(self, sha256: str, size: int, fetch: Callable[[Path], bool]) -> Path | None:
        """Fetch the file with ``fetch(destination)`` (which writes it atomically) unless it
        is here; None when the store no longer has it or sent other than ``size`` bytes."""
        found = self.get(sha256)
        if found is not None:
            return found
        if size > self.max_bytes:
            return None
        path = self.path(sha256)
        self.root.mkdir(parents=True, exist_ok=True)
        if not fetch(path):
            return None
        if path.stat().st_size != size:
            path.unlink(missing_ok=True)
            return None
        self._add(sha256, size)
        return path

    def _add(self, sha256: str, size: int) -> None:
        with self._lock:
            if sha256 not in self._sizes:
                self._sizes[sha256] = size
                self.total += size
            self._sizes.move_to_end(sha256)
            self._evict()

    def _evict(self) -> None:
        while self.total > self.max_bytes and len(self._sizes) > 1:
            name, size = self._sizes.popitem(last=False)
            self.total -= size
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / name)
