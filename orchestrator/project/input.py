"""Turning untrusted submissions (a JSON file map or a tarball) into a checked file map.

Everything here is pure: bytes in, ``dict[path, bytes]`` out, or an ``InputError``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from orchestrator.errors import InputError, PayloadTooLarge
from orchestrator.settings import Settings

Files = dict[str, bytes]

MAX_PATH_LENGTH = 400
MAX_PATH_DEPTH = 32
MAX_PACKAGE_JSON_BYTES = 1024 * 1024
FORBIDDEN_DIRS = frozenset({"node_modules"})


MB = 1024 * 1024
MAX_FILE_MB = "KILN_MAX_FILE_MB"


def too_large(what: str, size: int, limit: int, setting: str) -> PayloadTooLarge:
    """``file big.bin is 11.4 MB; the limit is 10 MB (KILN_MAX_FILE_MB)``."""
    if limit < MB:  # a limit set below a megabyte is said in bytes
        return PayloadTooLarge(f"{what} is {size} bytes; the limit is {limit} bytes ({setting})")
    return PayloadTooLarge(
        f"{what} is {size / MB:.1f} MB; the limit is {limit / MB:g} MB ({setting})"
    )


def unreadable_archive(data: bytes) -> InputError:
    """Why a tarball submit cannot be read, in words (not tarfile's list of codecs)."""
    if data[:2] == b"\x1f\x8b":
        return InputError("the body is gzip data, but not a tar archive inside (or damaged)")
    if data.lstrip()[:1] in (b"{", b"["):
        return InputError(
            "the body is not a gzip or tar archive; it looks like JSON: send it with "
            "Content-Type: application/json"
        )
    return InputError("the body is not a gzip or tar archive")


@dataclass(frozen=True)
class InputLimits:
    """Bounds on a submitted project."""

    max_files: int = 5000
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 50 * 1024 * 1024


def normalize_path(raw: str) -> str:
    """Return ``raw`` as a clean relative POSIX path, or raise if it could leave the project."""
    if not raw or "\x00" in raw or "\\" in raw:
        raise InputError(f"invalid path {raw!r}: empty, or contains NUL or a backslash")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in raw):
        raise InputError(f"invalid path {raw!r}: control characters or bytes that are not UTF-8")
    if len(raw) > MAX_PATH_LENGTH:
        raise InputError(f"path too long ({len(raw)} characters): {raw[:80]}...")
    if raw.startswith("/"):
        raise InputError(f"absolute path not allowed: {raw!r}")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if not parts:
        raise InputError(f"invalid path {raw!r}")
    if ".." in parts:
        raise InputError(f"path escapes the project: {raw!r}")
    if len(parts) > MAX_PATH_DEPTH:
        raise InputError(f"path nested too deeply: {raw!r}")
    if parts[0] in FORBIDDEN_DIRS or "node_modules" in parts:
        raise InputError(
            f"{raw!r}: node_modules must not be submitted; Kiln installs dependencies itself"
        )
    return "/".join(parts)


def decode_content(path: str, content: object) -> bytes:
    """Decode one JSON file-map value: a UTF-8 string or ``{"base64": "..."}``."""
    if isinstance(content, str):
        return content.encode("utf-8")
    if isinstance(content, Mapping) and isinstance(content.get("base64"), str):
        try:
            return base64.b64decode(content["base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"{path}: invalid base64 content") from exc
    raise InputError(f'{path}: content must be a string or {{"base64": "..."}}')


class _Collector:
    """Accumulates files while enforcing count and size bounds."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.files: Files = {}
        self.total = 0

    def add(self, raw_path: str, data: bytes) -> None:
        path = normalize_path(raw_path)
        if len(data) > self.limits.max_file_bytes:
            raise too_large(f"file {path}", len(data), self.limits.max_file_bytes, MAX_FILE_MB)
        if path in self.files:
            raise InputError(f"duplicate path {path!r}")
        self.total += len(data)
        if self.total > self.limits.max_total_bytes:
            raise PayloadTooLarge(
                f"the project is more than {self.limits.max_total_bytes / MB:g} MB in total, "
                f"the limit (KILN_MAX_UPLOAD_MB)"
            )
        if len(self.files) >= self.limits.max_files:
            raise PayloadTooLarge(
                f"the project has more than {self.limits.max_files} files, the limit "
                "(KILN_MAX_FILES)"
            )
        self.files[path] = data


def files_from_mapping(files: Mapping[str, object], limits: InputLimits) -> Files:
    """Check and decode a JSON file map (``{"path": "text" | {"base64": ...}}``)."""
    collector = _Collector(limits)
    for raw_path, content in files.items():
        collector.add(raw_path, decode_content(raw_path, content))
    return collector.files


def files_from_tar(data: bytes, limits: InputLimits, root: str | None = None) -> Files:
    """Read a tar or tar.gz archive of regular files and folders; links and devices are refused.
    ``root``: the app's folder the submit names (a wrapping folder is dropped around it)."""
    collector = _Collector(limits)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive:
                if member.isdir():
                    if member.name.strip("./"):
                        normalize_path(member.name)
                    continue
                if member.issym() or member.islnk():
                    raise InputError(f"links are not allowed in a project: {member.name!r}")
                if not member.isfile():
                    raise InputError(f"only regular files are allowed: {member.name!r}")
                if member.size > limits.max_file_bytes:
                    raise too_large(
                        f"file {member.name}", member.size, limits.max_file_bytes, MAX_FILE_MB
                    )
                extracted = archive.extractfile(member)
                collector.add(member.name, extracted.read() if extracted else b"")
    except tarfile.ReadError as exc:  # not an archive tarfile knows: say so in plain words
        raise unreadable_archive(data) from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"not a readable tar or tar.gz archive: {exc}") from exc
    return strip_common_root(collector.files, root)


def strip_common_root(files: Files, app: str | None = None) -> Files:
    """Drop one wrapping folder (``npm pack``'s ``package/``, GitHub's ``repo-sha/``) that
    holds the app: its package.json, or ``<app>/package.json`` when the submit names ``app``."""
    wanted = f"{app}/package.json" if app else "package.json"
    if wanted in files or not files:
        return files
    roots = {path.split("/", 1)[0] for path in files}
    if len(roots) != 1 or any("/" not in path for path in files):
        return files
    wrapper = roots.pop()
    if f"{wrapper}/{wanted}" not in files:
        return files
    return {path.split("/", 1)[1]: data for path, data in files.items()}


def overlay(base: Files, overrides: Files) -> Files:
    """Return ``base`` with ``overrides`` written over it."""
    return {**base, **overrides}


def parse_package_json(files: Files, path: str = "package.json") -> dict[str, object]:
    """Return the project's package.json (or the one at ``path``, e.g. ``front/package.json``)
    as a dict, or raise a clear InputError."""
    raw = files.get(path)
    if raw is None:
        raise InputError(f"the project has no {path} at its root")
    if len(raw) > MAX_PACKAGE_JSON_BYTES:
        raise PayloadTooLarge(f"{path} is larger than 1 MiB")
    try:
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise InputError(f"{path} must be a JSON object")
    for field in ("scripts", "dependencies", "devDependencies"):
        value = manifest.get(field)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise InputError(f"{path}: {field!r} must map names to strings")
    return manifest


def to_tar(files: Files) -> bytes:
    """Pack a checked file map as an uncompressed tar, in a stable order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(files):
            info = tarfile.TarInfo(str(PurePosixPath(path)))
            info.size = len(files[path])
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(files[path]))
    return buffer.getvalue()


def input_limits(settings: Settings) -> InputLimits:
    """The server's bounds on a submitted project (and on the code generator's files)."""
    return InputLimits(
        max_files=settings.max_files,
        max_file_bytes=settings.max_file_mb * 1024 * 1024,
        max_total_bytes=settings.max_upload_mb * 1024 * 1024,
    )
