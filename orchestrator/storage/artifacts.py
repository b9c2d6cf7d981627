"""Checking a build's output folder (``dist/``) before it is published, and describing it
for the manifest."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BuildError, ErrorCode
from orchestrator.storage.layout import DIST
from orchestrator.storage.manifest import INDEX, Entry, Manifest, content_type


@dataclass(frozen=True)
class OutputLimits:
    """Bounds on what a build may publish."""

    max_bytes: int
    max_files: int
    max_depth: int = 32


def check_output(dist: Path, limits: OutputLimits, label: str = DIST) -> tuple[int, int]:
    """Walk ``dist`` without following links; refuse links, devices and hardlinks, enforce bounds.

    Returns (files, bytes). ``label`` names the folder in messages (``build/client``). Runs
    only after the build's container has exited, so nothing can change the tree while it
    is checked and moved.
    """
    _check_is_folder(dist, label)
    files = size = 0
    for rel, info in _non_folders(dist, limits.max_depth, label):
        _check_publishable(f"{label}/{rel}", info)
        files += 1
        size += info.st_size
        if files > limits.max_files or size > limits.max_bytes:
            raise BuildError(
                f"{label}/ exceeds {limits.max_files} files or "
                f"{limits.max_bytes // (1024 * 1024)} MB",
                code=ErrorCode.OUTPUT_TOO_LARGE,
            )
    if not (dist / INDEX).is_file():
        raise BuildError(f"{label}/ has no index.html", code=ErrorCode.BUILD_FAILED)
    return files, size


def output_folder(workspace: Path, relative: str) -> Path | None:
    """``workspace/relative`` when it is a folder reached through folders only; None when
    some part of it is missing or not a folder.

    A link anywhere on the way is ``unsafe_output``: the build could point one at the
    host's files. ``relative`` is already clean (no ``..``, not absolute).
    """
    path = workspace
    for part in relative.split("/"):
        path = path / part
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(info.st_mode):
            raise BuildError(
                f"{relative}/ goes through a link ({path.relative_to(workspace)}); Kiln "
                "publishes only a real folder of the project",
                code=ErrorCode.UNSAFE_OUTPUT,
            )
        if not stat.S_ISDIR(info.st_mode):
            return None
    return path


def _check_is_folder(dist: Path, label: str) -> None:
    try:
        top = os.lstat(dist)
    except FileNotFoundError:
        raise BuildError(
            f"the build finished but wrote no {label}/ folder", code=ErrorCode.BUILD_FAILED
        ) from None
    if not stat.S_ISDIR(top.st_mode):
        raise BuildError(f"{label} is not a folder", code=ErrorCode.UNSAFE_OUTPUT)


def _non_folders(dist: Path, max_depth: int, label: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``dist`` that is not a folder, as (path relative to dist, lstat),
    descending no deeper than ``max_depth`` folders."""
    pending = [(dist, 0)]
    while pending:
        folder, depth = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode):
                    yield os.path.relpath(entry.path, dist), info
                elif depth + 1 > max_depth:
                    raise BuildError(
                        f"{label}/ is nested deeper than {max_depth} folders",
                        code=ErrorCode.OUTPUT_TOO_LARGE,
                    )
                else:
                    pending.append((Path(entry.path), depth + 1))


def _check_publishable(path: str, info: os.stat_result) -> None:
    """Only regular files with one name are published: a link, device or hard link could
    make the preview serve something outside the build's own output."""
    if not stat.S_ISREG(info.st_mode):
        raise BuildError(
            f"{path} is a link or special file; only regular files are published",
            code=ErrorCode.UNSAFE_OUTPUT,
        )
    if info.st_nlink > 1:
        raise BuildError(f"{path} is a hard link", code=ErrorCode.UNSAFE_OUTPUT)


def describe_tree(dist: Path, build_id: str) -> Manifest:
    """The manifest of a checked ``dist/``: every file's size, content type and SHA-256.

    Reads each file once, in chunks; ``check_output`` has already refused links.
    """
    files = {}
    for folder, _dirs, names in os.walk(dist):
        for name in names:
            path = Path(folder, name)
            relative = path.relative_to(dist).as_posix()
            digest = hashlib.sha256()
            size = 0
            with path.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            files[relative] = Entry(relative, size, content_type(relative), digest.hexdigest())
    return Manifest(build_id, files)
