"""Facts about package.json and lockfiles that every part of Kiln reads the same way (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import InputError

NPM_LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")
OTHER_LOCKFILES = ("yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock")
LOCKFILES = (*NPM_LOCKFILES, *OTHER_LOCKFILES)
# The package.json fields that declare what gets installed.
DEPENDENCY_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
)
# Fields whose values are dependency specs (checked for where they come from).
SPEC_FIELDS = (*DEPENDENCY_FIELDS, "overrides")
# Fields a dependency layer's package.json keeps (peer metadata changes what npm installs).
LAYER_FIELDS = (*DEPENDENCY_FIELDS, "peerDependenciesMeta")
# The project's own install-time scripts, in the order npm runs them.
ROOT_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")


def scripts_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """package.json's ``scripts``, or an empty mapping when it has none (or a bad one)."""
    scripts = manifest.get("scripts")
    return scripts if isinstance(scripts, dict) else {}


def root_install_scripts(manifest: Mapping[str, Any]) -> list[str]:
    """The project's own install-time scripts, in the order npm runs them."""
    scripts = scripts_of(manifest)
    return [name for name in ROOT_INSTALL_SCRIPTS if scripts.get(name)]


def has_dependencies(manifest: Mapping[str, Any]) -> bool:
    """True when package.json declares any dependency (else there is nothing to install)."""
    return any(
        isinstance(manifest.get(name), dict) and manifest[name] for name in DEPENDENCY_FIELDS
    )


def lockfile_in_sync(manifest: Mapping[str, object], lock: Mapping[str, object]) -> bool:
    """True when package-lock.json's root entry records exactly package.json's dependencies."""
    packages = lock.get("packages")
    if not isinstance(packages, dict) or not isinstance(packages.get(""), dict):
        return False  # lockfileVersion 1, or not an npm lockfile at all
    root = packages[""]
    return all((manifest.get(f) or {}) == (root.get(f) or {}) for f in DEPENDENCY_FIELDS)


def check_buildable(manifest: Mapping[str, object]) -> None:
    """Refuse a project that has neither a build script nor Vite to fall back on."""
    if scripts_of(manifest).get("build"):
        return
    deps: dict[str, object] = {}
    for name in ("dependencies", "devDependencies"):
        value = manifest.get(name)
        if isinstance(value, dict):
            deps.update(value)
    if "vite" not in deps:
        raise InputError(
            'package.json has no "build" script and does not depend on vite; '
            "add a build script that writes dist/"
        )
