"""The artifact store: published dist/ folders, and how preview paths map onto them."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.errors import BuildError, ErrorCode

INDEX = "index.html"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class OutputLimits:
    """Bounds on what a build may publish."""

    max_bytes: int
    max_files: int
    max_depth: int = 32


def check_output(dist: Path, limits: OutputLimits) -> tuple[int, int]:
    """Walk ``dist`` without following links; refuse links, devices and hardlinks, enforce bounds.

    Returns (files, bytes). Runs only after the build's container has exited, so nothing
    can change the tree while it is checked and moved.
    """
    try:
        top = os.lstat(dist)
    except FileNotFoundError:
        raise BuildError(
            "the build finished but wrote no dist/ folder (Kiln publishes dist/; check "
            "build.outDir in the Vite config)",
            code=ErrorCode.BUILD_FAILED,
        ) from None
    if not stat.S_ISDIR(top.st_mode):
        raise BuildError("dist is not a folder", code=ErrorCode.UNSAFE_OUTPUT)
    files = size = 0
    pending = [(dist, 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                rel = os.path.relpath(entry.path, dist)
                if stat.S_ISDIR(info.st_mode):
                    if depth + 1 > limits.max_depth:
                        raise BuildError(
                            f"dist/ is nested deeper than {limits.max_depth} folders",
                            code=ErrorCode.OUTPUT_TOO_LARGE,
                        )
                    pending.append((Path(entry.path), depth + 1))
                    continue
                if not stat.S_ISREG(info.st_mode):
                    raise BuildError(
                        f"dist/{rel} is a link or special file; only regular files are published",
                        code=ErrorCode.UNSAFE_OUTPUT,
                    )
                if info.st_nlink > 1:
                    raise BuildError(f"dist/{rel} is a hard link", code=ErrorCode.UNSAFE_OUTPUT)
                files += 1
                size += info.st_size
                if files > limits.max_files or size > limits.max_bytes:
                    raise BuildError(
                        f"dist/ exceeds {limits.max_files} files or "
                        f"{limits.max_bytes // (1024 * 1024)} MB",
                        code=ErrorCode.OUTPUT_TOO_LARGE,
                    )
    if not (dist / INDEX).is_file():
        raise BuildError("dist/ has no index.html", code=ErrorCode.BUILD_FAILED)
    return files, size


def publish(dist: Path, destination: Path, limits: OutputLimits) -> tuple[int, int]:
    """Check ``dist`` and move it to ``destination`` (same filesystem: a rename)."""
    counts = check_output(dist, limits)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        shutil.rmtree(destination)
    try:
        os.rename(dist, destination)
    except OSError:  # another filesystem: copy what was just checked
        shutil.copytree(dist, destination, symlinks=True)
    return counts


def cache_control(relative: str) -> str:
    """Vite's hashed assets live under assets/ and never change; everything else revalidates."""
    return IMMUTABLE if relative.startswith("assets/") else REVALIDATE


def resolve_preview(root: Path, url_path: str) -> tuple[Path, str] | None:
    """Map a preview URL path to (file, relative path) under ``root``, with SPA fallback.

    A path with no file extension that matches no file falls back to index.html; anything
    else that matches nothing is a 404 (None). Never leaves ``root``.
    """
    parts = [p for p in PurePosixPath("/" + url_path.lstrip("/")).parts[1:] if p not in ("", ".")]
    if ".." in parts or any("\x00" in p for p in parts):
        return None
    try:
        return _resolve(root, parts)
    except OSError:  # e.g. a name longer than the filesystem allows: nothing is there
        return None


def _resolve(root: Path, parts: list[str]) -> tuple[Path, str] | None:
    relative = "/".join(parts)
    candidate = root.joinpath(*parts) if parts else root
    if candidate.is_dir():
        candidate, relative = candidate / INDEX, f"{relative}/{INDEX}".lstrip("/")
    if candidate.is_file() and not candidate.is_symlink():
        real_root = root.resolve()
        if candidate.resolve().is_relative_to(real_root):
            return candidate, relative
        return None
    if parts and "." in parts[-1]:
        return None
    index = root / INDEX
    return (index, INDEX) if index.is_file() else None
