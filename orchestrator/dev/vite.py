"""Facts about a project's Vite and package.json that a dev session acts on. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

DEPENDENCY_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "overrides",
    "bundleDependencies",
    "bundledDependencies",
)
# (advisory, the first fixed version on each release line). Kiln closes both at its
# proxy whatever the version; the session's status still says the project's Vite has them.
ADVISORIES = (
    (
        "GHSA-vg6x-rcgg-rjx6 (dev server reachable by any site: DNS rebinding / no Origin check)",
        ((4, 5, 6), (5, 4, 12), (6, 0, 9)),
    ),
    (
        "CVE-2026-39363 (any file readable through the HMR socket's vite:invoke)",
        ((6, 4, 2), (7, 3, 2), (8, 0, 5)),
    ),
)
VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``"6.0.8"`` -> (6, 0, 8); None when there is no x.y.z in it."""
    found = VERSION.search(text or "")
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def is_fixed(version: tuple[int, int, int], fixed_in: tuple[tuple[int, int, int], ...]) -> bool:
    """True when ``version`` carries the fix: at or past the fix of its own release line,
    or on a line newer than every fixed line."""
    lines = {(f[0], f[1]): f for f in fixed_in}
    newest = max(fixed_in)
    if version[:2] in lines:
        return version >= lines[version[:2]]
    if version > newest:
        return True
    # A line without a fix of its own: fixed only if a newer line's fix came before it
    # within the same major (e.g. 6.1.0 is after 6.0.9, so it has the fix).
    same_major = [f for f in fixed_in if f[0] == version[0] and f <= version]
    return bool(same_major)


def vite_warnings(version_text: str) -> list[str]:
    """Warnings for a project's Vite version (empty when it has every fix, or is unknown)."""
    version = parse_version(version_text)
    if version is None:
        return []
    return [
        f"this project's Vite {version_text} predates the fix of {name}; Kiln's proxy "
        "closes it for the dev session, but upgrade Vite before running it elsewhere"
        for name, fixed_in in ADVISORIES
        if not is_fixed(version, fixed_in)
    ]


def dependency_digest(manifest: Mapping[str, Any]) -> str:
    """A digest of package.json's dependency fields: a change means install and restart."""
    relevant = {name: manifest.get(name) for name in DEPENDENCY_FIELDS if name in manifest}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


_LOCATION = re.compile(r"(?:/workspace/)?((?:[\w@.-]+/)*[\w@.-]+\.[a-z]{1,5}):(\d+):(\d+)")


def error_location(message: str) -> dict[str, Any]:
    """File, line and column named in a compile error's message (Vite, esbuild, rolldown)."""
    found = _LOCATION.search(message or "")
    if found is None:
        return {}
    return {"file": found[1], "line": int(found[2]), "column": int(found[3])}
