"""What cache entries are keyed by, and which projects may share them. Pure functions only.

A dependency layer is shared by every build whose key matches, so the key must pin
everything that decides the layer's bytes: the lockfile (whose integrity hashes pin every
package), the install command, and the toolchain (sandbox image, Node version, platform).
Anything a project could use to make its layer differ from another project's with the same
key (its own scripts, an ``.npmrc``, git or ``file:`` dependencies, overrides) keeps that
project out of the shared layers; it installs privately, as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.project.npm import LAYER_FIELDS
from orchestrator.sandbox.step import Toolchain

LAYER_FORMAT = 1  # bump when a layer's layout changes: old layers then stop matching
INPUT_FORMAT = 1  # bump when what a build does with its input changes
KEY_CHARS = 40
# Project settings that change what npm installs beyond what the lockfile records.
UNSHAREABLE_FIELDS = ("overrides", "resolutions", "workspaces", "bundleDependencies")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def _digest(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return sha256_hex(canonical.encode())[:KEY_CHARS]


def layer_key(
    lockfile: bytes,
    *,
    install_argv: Sequence[str],
    toolchain: Toolchain,
    manifest: Mapping[str, Any] | None = None,
    scripts_argv: Sequence[str] | None = None,
    settings: Mapping[str, str] | None = None,
) -> str:
    """The key of the dependency layer that ``install_argv`` makes from ``lockfile``.

    ``manifest``: the package.json the layer is installed from, when it is not made from
    the lockfile alone (pnpm, yarn and bun lockfiles do not record all of it); npm's
    layers are keyed without it, so their keys stay as they were. ``scripts_argv``: the
    dependency scripts step a pnpm, yarn or bun layer runs (which packages' scripts ran
    is part of what the layer is: bun's default list comes from the image, not the
    manifest); a layer that runs none keeps its key. ``settings``: the manager's settings
    from the project's own files (a yarn 2+ rc's packageExtensions); none keeps the key.
    """
    fields: dict[str, Any] = {
        "format": LAYER_FORMAT,
        "lockfile": sha256_hex(lockfile),
        "argv": list(install_argv),
        "image": toolchain.image_id,
        "node": toolchain.node_version,
        "platform": toolchain.platform,
    }
    if manifest is not None:
        fields["manifest"] = dict(manifest)
    if scripts_argv is not None:
        fields["scripts"] = list(scripts_argv)
    if settings:
        fields["settings"] = dict(settings)
    return _digest(fields)


_PLAIN_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def _is_registry_package(entry: Mapping[str, Any]) -> bool:
    """A tarball of the registry, pinned by its integrity hash. npm leaves ``resolved`` out
    for packages it did not fetch on the machine that wrote the lockfile (an optional one
    for another platform): name, exact version and integrity still pin it."""
    resolved, integrity = entry.get("resolved"), entry.get("integrity")
    if not (isinstance(integrity, str) and integrity.startswith("sha")):
        return False
    if resolved is None:
        return bool(_PLAIN_VERSION.match(str(entry.get("version", ""))))
    return isinstance(resolved, str) and resolved.startswith("https://")


def lockfile_refusal(lock: Mapping[str, Any]) -> str | None:
    """Why this npm lockfile cannot back a shared layer, or None when it can.

    Every installed package must come from a registry tarball pinned by an integrity hash,
    at a plain ``node_modules/`` path; links (workspaces, ``file:``) and git or URL
    dependencies could differ between two projects with the same lockfile.
    """
    packages = lock.get("packages")
    if not isinstance(packages, dict) or not isinstance(packages.get(""), dict):
        return "the lockfile has no lockfileVersion 2/3 package list"
    for path, entry in packages.items():
        if path == "":
            continue
        if not isinstance(entry, dict) or not isinstance(path, str):
            return "the lockfile has a malformed entry"
        parts = path.split("/")
        if parts[0] != "node_modules" or ".." in parts or "" in parts or "\\" in path:
            return f"{path[:80]!r} is not a plain node_modules path"
        if entry.get("link"):
            return f"{path} is a local link (workspace or file: dependency)"
        if entry.get("inBundle"):
            continue  # shipped inside its parent's tarball, which is pinned
        if not _is_registry_package(entry):
            return f"{path} is not a registry tarball with an integrity hash"
    return None


def project_refusal(manifest: Mapping[str, Any], project_files: Sequence[str]) -> str | None:
    """Why this project must install privately rather than share a layer, or None."""
    if ".npmrc" in project_files:
        return "the project has its own .npmrc"
    for name in UNSHAREABLE_FIELDS:
        if name in manifest:
            return f'package.json sets "{name}"'
    return None


def layer_manifest(lock: Mapping[str, Any]) -> dict[str, Any]:
    """A package.json that makes ``npm ci`` install exactly ``lock``: its root entry, no scripts.

    The layer is installed from this rather than from the project's package.json, so
    nothing of the project but its lockfile reaches the shared layer.
    """
    root = lock["packages"][""]
    manifest: dict[str, Any] = {
        "name": str(root.get("name") or lock.get("name") or "kiln-layer"),
        "version": str(root.get("version") or lock.get("version") or "0.0.0"),
        "private": True,
    }
    for name in LAYER_FIELDS:
        if isinstance(root.get(name), dict):
            manifest[name] = root[name]
    return manifest


def resolution_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The dependency fields of a project's package.json, under a fixed name, for resolving."""
    resolved: dict[str, Any] = {"name": "kiln-resolution", "version": "0.0.0", "private": True}
    for name in LAYER_FIELDS:
        if isinstance(manifest.get(name), dict):
            resolved[name] = manifest[name]
    return resolved


def resolution_key(
    manifest: Mapping[str, Any],
    stale_lockfile: bytes | None,
    *,
    resolve_argv: Sequence[str],
    toolchain: Toolchain,
    registry: str,
) -> str:
    """The key of a dependency resolution: the dependency ranges (and any stale lockfile)."""
    return _digest(
        {
            "format": LAYER_FORMAT,
            "manifest": resolution_manifest(manifest),
            "lockfile": sha256_hex(stale_lockfile) if stale_lockfile is not None else None,
            "argv": list(resolve_argv),
            "image": toolchain.image_id,
            "registry": registry,
        }
    )


def source_digest(files: Mapping[str, bytes]) -> str:
    """A digest of a whole project: every path and its content, independent of order."""
    hasher = hashlib.sha256()
    for path in sorted(files):
        content = files[path]
        hasher.update(f"{path}\0{len(content)}\0".encode())
        hasher.update(hashlib.sha256(content).digest())
    return hasher.hexdigest()


def input_key(
    source: str,
    *,
    image_id: str,
    settings: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
) -> str:
    """The key under which a successful build's artifact answers an identical submit.

    ``settings`` holds the server settings that change what a build produces (registry,
    Node major); per-build limits are left out, since they can only make a build fail.
    ``env`` (the submit's build settings) changes the bundle, so it is part of the key.
    """
    fields: dict[str, Any] = {
        "format": INPUT_FORMAT,
        "source": source,
        "image": image_id,
        "settings": dict(settings),
    }
    if env:  # absent when empty, so builds without env keep their earlier keys
        fields["env"] = dict(sorted(env.items()))
    return _digest(fields)
