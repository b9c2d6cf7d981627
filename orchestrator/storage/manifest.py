"""A published build's manifest: every file of its ``dist/`` with size, type and hash.

Pure: how a preview URL path maps onto the manifest (SPA fallback included) and the
headers a file is served with. The manifest is written after every file is stored, so a
reader that finds it finds the whole build.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

INDEX = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSION = 1

mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("image/svg+xml", ".svg")


def content_type(relative: str) -> str:
    """The Content-Type a file is served with (text types in UTF-8, as before)."""
    guessed = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def cache_control(relative: str) -> str:
    """Vite's hashed assets live under assets/ and never change; everything else revalidates."""
    return IMMUTABLE if relative.startswith("assets/") else REVALIDATE


@dataclass(frozen=True)
class Entry:
    """One published file."""

    path: str  # relative to dist/, with forward slashes
    size: int
    content_type: str
    sha256: str

    @property
    def etag(self) -> str:
        """A strong ETag: the content hash (the same bytes have the same tag in every build)."""
        return f'"{self.sha256[:32]}"'


@dataclass(frozen=True)
class Manifest:
    """The files of one published build."""

    build_id: str
    files: dict[str, Entry]
    folders: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        folders = set()
        for path in self.files:
            parent = PurePosixPath(path).parent
            while str(parent) != ".":
                folders.add(str(parent))
                parent = parent.parent
        object.__setattr__(self, "folders", frozenset(folders))

    @property
    def total_bytes(self) -> int:
        """The size of every file together."""
        return sum(e.size for e in self.files.values())

    def to_json(self) -> bytes:
        """The stored form."""
        files = [
            {"path": e.path, "size": e.size, "type": e.content_type, "sha256": e.sha256}
            for e in sorted(self.files.values(), key=lambda e: e.path)
        ]
        return json.dumps({"version": VERSION, "build": self.build_id, "files": files}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a stored manifest (written by Kiln; anything else is a ValueError)."""
        data: dict[str, Any] = json.loads(raw)
        if data.get("version") != VERSION:
            raise ValueError(f"unknown manifest version {data.get('version')!r}")
        entries = [Entry(f["path"], int(f["size"]), f["type"], f["sha256"]) for f in data["files"]]
        return cls(str(data["build"]), {e.path: e for e in entries})

    def resolve(self, url_path: str) -> Entry | None:
        """Map a preview URL path to a file, with SPA fallback (no I/O).

        A folder serves its index.html; a path with no file extension that matches nothing
        falls back to index.html; anything else that matches nothing is None (a 404).
        """
        parts = [p for p in PurePosixPath("/" + url_path.lstrip("/")).parts[1:] if p != "."]
        if ".." in parts or any("\x00" in p for p in parts):
            return None
        relative = "/".join(parts)
        found = self.files.get(relative)
        if found is not None:
            return found
        if not parts or relative in self.folders:
            found = self.files.get(f"{relative}/{INDEX}".lstrip("/"))
            if found is not None:
                return found
        if parts and "." in parts[-1]:
            return None
        return self.files.get(INDEX)
