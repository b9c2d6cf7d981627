"""Which pnpm, yarn and bun projects may share a dependency layer, and what it is made from.

Pure functions only. npm's rules are in ``keys`` (``project_refusal``, ``lockfile_refusal``);
these are the same rules for the other managers' lockfiles and settings files:

- every locked package is a registry tarball pinned by an integrity hash (no git, no
  ``file:``/``link:``, no tarball URL, no workspace other than the root, no patch file of
  the project), so two projects with the same lockfile get the same bytes;
- no project file that changes what the manager installs beyond its lockfile
  (``.npmrc``, ``.yarnrc``, ``bunfig.toml``, a ``pnpm-workspace.yaml`` with more than the
  build-script allowlist, ``pnpm``/``patchedDependencies`` settings in package.json).

A layer is installed from ``layer_manifest`` (the project's dependency fields, its name,
and the managers' own allowlists of dependency scripts; never its scripts) and the
lockfile: nothing else of the project reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.cache.keys import UNSHAREABLE_FIELDS
from orchestrator.project.environment import Manager
from orchestrator.project.lockfiles import load_jsonc, load_yaml
from orchestrator.project.npm import LAYER_FIELDS

#: Files that change how a manager installs (beyond its lockfile): their projects install
#: privately. berry's ``.yarnrc.yml`` is not here: Kiln never lets yarn read it.
SETTINGS_FILES = {
    Manager.PNPM: (".npmrc",),
    Manager.YARN_CLASSIC: (".npmrc", ".yarnrc"),
    Manager.YARN_BERRY: (),
    Manager.BUN: (".npmrc", "bunfig.toml"),
}
#: pnpm-workspace.yaml / package.json "pnpm" keys that only say which dependency scripts run.
PNPM_SCRIPT_KEYS = frozenset({"onlyBuiltDependencies", "ignoredBuiltDependencies"})
_INTEGRITY = re.compile(r"^sha(1|256|384|512)-[A-Za-z0-9+/=]+$")
_BERRY_NPM = re.compile(r"^(@[^@/]+/)?[^@/]+@npm:[^:#]+$")
# yarn's own patches of typescript, resolve and fsevents (same bytes for everyone)
_BERRY_BUILTIN_PATCH = re.compile(
    r"^(@[^@/]+/)?[^@/]+@patch:[^#]+#(optional!|~)builtin<compat/[\w-]+>(::[\w=&.%-]+)?$"
)


def project_refusal(
    manager: Manager,
    manifest: Mapping[str, Any],
    project_files: Sequence[str],
    workspace_yaml: bytes | None,
) -> str | None:
    """Why this pnpm/yarn/bun project must install privately rather than share a layer."""
    for name in SETTINGS_FILES[manager]:
        if name in project_files:
            return f"the project has its own {name}"
    for name in (*UNSHAREABLE_FIELDS, "patchedDependencies"):
        if name in manifest:
            return f'package.json sets "{name}"'
    if manager == Manager.PNPM:
        pnpm = manifest.get("pnpm")
        if pnpm is not None and (not isinstance(pnpm, dict) or set(pnpm) - PNPM_SCRIPT_KEYS):
            return 'package.json sets "pnpm" settings beyond onlyBuiltDependencies'
        if workspace_yaml is not None:
            settings = load_yaml(workspace_yaml)
            if settings is None or set(settings) - PNPM_SCRIPT_KEYS:
                return "pnpm-workspace.yaml sets more than onlyBuiltDependencies"
    return None


def lockfile_refusal(manager: Manager, lockfile: str, raw: bytes) -> str | None:
    """Why this lockfile cannot back a shared layer, or None when every package it locks is
    a registry tarball pinned by an integrity hash."""
    if manager == Manager.PNPM:
        return _pnpm_refusal(raw)
    if manager == Manager.YARN_CLASSIC:
        return _yarn_classic_refusal(raw)
    if manager == Manager.YARN_BERRY:
        return _berry_refusal(raw)
    if manager == Manager.BUN:
        if lockfile != "bun.lock":
            return f"{lockfile} is binary: Kiln cannot check where its packages come from"
        return _bun_refusal(raw)
    raise ValueError(f"npm lockfiles are checked by keys.lockfile_refusal, not {manager}")


def _pnpm_refusal(raw: bytes) -> str | None:
    lock = load_yaml(raw)
    if lock is None:
        return "pnpm-lock.yaml is not a YAML mapping"
    importers = lock.get("importers")
    if not isinstance(importers, dict) or set(importers) != {"."}:
        return "pnpm-lock.yaml has no single root importer (a workspace)"
    packages = lock.get("packages") or {}
    if not isinstance(packages, dict):
        return "pnpm-lock.yaml has a malformed package list"
    return _pnpm_importer_refusal(importers["."]) or next(
        filter(None, (_pnpm_package_refusal(str(k), v) for k, v in packages.items())), None
    )


def _pnpm_importer_refusal(root: object) -> str | None:
    """A root importer's direct dependencies must be registry versions (no link:/file:)."""
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        deps = (root.get(field) if isinstance(root, dict) else None) or {}
        if not isinstance(deps, dict):
            return "pnpm-lock.yaml has a malformed importer"
        for name, entry in deps.items():
            version = str(entry.get("version", "")) if isinstance(entry, dict) else ""
            if version.startswith(("link:", "file:")) or "://" in version:
                return f"{name} is not a registry package ({version[:60]})"
    return None


def _pnpm_package_refusal(name: str, entry: object) -> str | None:
    resolution = entry.get("resolution") if isinstance(entry, dict) else None
    if not isinstance(resolution, dict) or set(resolution) != {"integrity"}:
        return f"{name[:80]} is not a registry tarball with an integrity hash"
    if not _INTEGRITY.match(str(resolution["integrity"])):
        return f"{name[:80]} has no integrity hash"
    return None


def _yarn_classic_refusal(raw: bytes) -> str | None:
    text = raw.decode("utf-8", errors="replace")
    entries = [b.strip("\n") for b in re.split(r"\n(?=\S)", text) if b and not b.startswith("#")]
    for block in entries:
        header, _, body = block.partition("\n")
        if not body:
            continue  # a blank separator
        resolved = re.search(r'^\s+resolved "([^"]+)"', body, re.M)
        integrity = re.search(r"^\s+integrity (\S+)", body, re.M)
        name = header.rstrip(":")[:80]
        if resolved is None or not resolved.group(1).startswith("https://"):
            return f"{name} is not a registry tarball"
        if "/-/" not in resolved.group(1):  # registry tarballs live under <name>/-/
            return f"{name} is not a registry tarball ({resolved.group(1)[:60]})"
        if integrity is None or not _INTEGRITY.match(integrity.group(1)):
            return f"{name} has no integrity hash"
    return None


def _berry_refusal(raw: bytes) -> str | None:
    lock = load_yaml(raw)
    if lock is None:
        return "yarn.lock is not a YAML mapping"
    for descriptor, entry in lock.items():
        if descriptor == "__metadata":
            continue
        resolution = str(entry.get("resolution", "")) if isinstance(entry, dict) else ""
        if resolution.endswith("@workspace:."):
            continue  # the project itself
        name = str(descriptor)[:80]
        if not (_BERRY_NPM.match(resolution) or _BERRY_BUILTIN_PATCH.match(resolution)):
            return f"{name} is not a registry package ({resolution[:60]})"
        if _BERRY_NPM.match(resolution) and not entry.get("checksum"):
            if entry.get("conditions"):
                # yarn 4 records no checksum for a package with platform conditions (so the
                # lockfile reads the same on every platform): its exact version pins it
                continue
            return f"{name} has no checksum"
    return None


def _bun_refusal(raw: bytes) -> str | None:
    lock = load_jsonc(raw)
    if lock is None:
        return "bun.lock is not readable"
    workspaces = lock.get("workspaces")
    if not isinstance(workspaces, dict) or set(workspaces) != {""}:
        return "bun.lock has more than the root workspace"
    packages = lock.get("packages") or {}
    if not isinstance(packages, dict):
        return "bun.lock has a malformed package list"
    return next(filter(None, (_bun_package_refusal(str(k), v) for k, v in packages.items())), None)


def _bun_package_refusal(name: str, entry: object) -> str | None:
    """A registry package is ``[name@version, registry url or "", metadata, integrity]``."""
    if not isinstance(entry, list) or len(entry) != 4:
        return f"{name[:80]} is not a registry package"
    ident, registry, _, integrity = entry
    spec = str(ident).rpartition("@")[2]
    if not spec or ":" in spec or "/" in spec or not isinstance(registry, str):
        return f"{name[:80]} is not a registry package ({str(ident)[:60]})"
    if not _INTEGRITY.match(str(integrity)):
        return f"{name[:80]} has no integrity hash"
    return None


def layer_manifest(
    manager: Manager, manifest: Mapping[str, Any], workspace_yaml: bytes | None
) -> dict[str, Any]:
    """The package.json a layer is installed from: the project's name and dependency fields,
    and the manager's allowlist of dependency scripts (never the project's scripts)."""
    made: dict[str, Any] = {
        # yarn 2+ and bun record the root's name in the lockfile: a frozen install wants it
        "name": str(manifest.get("name") or "kiln-layer"),
        "version": str(manifest.get("version") or "0.0.0"),
        "private": True,
    }
    for name in LAYER_FIELDS:
        if isinstance(manifest.get(name), dict):
            made[name] = manifest[name]
    if isinstance(manifest.get("packageManager"), str):
        made["packageManager"] = manifest["packageManager"]
    if manager == Manager.PNPM:
        allowed = _pnpm_allowlist(manifest, workspace_yaml)
        if allowed:
            made["pnpm"] = allowed
    if manager == Manager.YARN_BERRY and isinstance(manifest.get("dependenciesMeta"), dict):
        # its `built: true` entries are yarn 4.14+'s script allowlist; the lockfile records it
        made["dependenciesMeta"] = manifest["dependenciesMeta"]
    if manager == Manager.BUN and "trustedDependencies" in manifest:
        # whatever its value: present, it replaces bun's default list (managers.bun_trusted)
        made["trustedDependencies"] = manifest["trustedDependencies"]
    return made


def _pnpm_allowlist(manifest: Mapping[str, Any], workspace_yaml: bytes | None) -> dict[str, Any]:
    """package.json's and pnpm-workspace.yaml's script allowlists, merged into one "pnpm"."""
    merged: dict[str, list[str]] = {}
    sources = [manifest.get("pnpm"), load_yaml(workspace_yaml) if workspace_yaml else None]
    for source in sources:
        if not isinstance(source, dict):
            continue
        for key in sorted(PNPM_SCRIPT_KEYS):
            names = source.get(key)
            if isinstance(names, list):
                merged[key] = sorted({*merged.get(key, []), *(str(n) for n in names)})
    return dict(merged)
