"""What each package manager's lockfile says, and whether it still matches package.json.

Pure functions only: bytes in, facts out. A "match" means the manager's frozen install
(``npm ci``, ``pnpm install --frozen-lockfile``, ``yarn install --frozen-lockfile`` /
``--immutable``, ``bun install --frozen-lockfile``) would accept the lockfile as it is;
``None`` means Kiln cannot tell (``bun.lockb`` is binary) and lets the manager decide.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

#: The dependency fields a frozen install compares with the lockfile.
COMPARED_FIELDS = ("dependencies", "devDependencies", "optionalDependencies")
NPM_LOCKFILES = ("package-lock.json", "npm-shrinkwrap.json")
PNPM_LOCKFILE = "pnpm-lock.yaml"
YARN_LOCKFILE = "yarn.lock"
BUN_LOCKFILES = ("bun.lock", "bun.lockb")
#: Every lockfile name Kiln reads, in the order it prefers them when several are present.
LOCKFILE_PRECEDENCE = (PNPM_LOCKFILE, YARN_LOCKFILE, *BUN_LOCKFILES, *NPM_LOCKFILES)

# libyaml's safe loader where PyYAML was built with it: the same documents, about 6x faster
# (a 66-dependency pnpm-lock.yaml, 185 KB: 59 ms against 368 ms in pure Python, measured).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def load_json(raw: bytes | None) -> dict[str, Any] | None:
    """A JSON object from bytes, or None when it is not one."""
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def load_jsonc(raw: bytes) -> dict[str, Any] | None:
    """``bun.lock``: JSON with trailing commas (and no comments, which bun does not write)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return load_json(_TRAILING_COMMA.sub(r"\1", text).encode())


@functools.lru_cache(maxsize=8)
def load_yaml(raw: bytes) -> dict[str, Any] | None:
    """A YAML mapping (safe loader only), or None. A build reads its lockfile more than once
    (is it frozen, may it have a layer), so the last few are kept: never change what this
    returns."""
    try:
        value = yaml.load(raw.decode("utf-8-sig"), Loader=SAFE_LOADER)
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def is_berry_lockfile(raw: bytes) -> bool:
    """True for a yarn 2+ (berry) ``yarn.lock`` (YAML with ``__metadata``), False for v1."""
    head = raw[:4096].decode("utf-8", errors="replace")
    if "# yarn lockfile v1" in head:
        return False
    return "__metadata:" in raw.decode("utf-8", errors="replace")


def _wanted(manifest: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    wanted: dict[str, dict[str, str]] = {}
    for name in COMPARED_FIELDS:
        value = manifest.get(name)
        if isinstance(value, dict):
            wanted[name] = {str(k): str(v) for k, v in value.items()}
    return wanted


def npm_matches(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """True when package-lock.json's root entry records exactly package.json's dependencies."""
    lock = load_json(raw)
    packages = lock.get("packages") if lock else None
    if not isinstance(packages, dict) or not isinstance(packages.get(""), dict):
        return False  # lockfileVersion 1, or not an npm lockfile at all
    root = packages[""]
    fields = (*COMPARED_FIELDS, "peerDependencies")
    return all((manifest.get(f) or {}) == (root.get(f) or {}) for f in fields)


def pnpm_matches(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """True when pnpm-lock.yaml's root importer has package.json's specifiers, field by field."""
    lock = load_yaml(raw)
    if lock is None:
        return False
    importers = lock.get("importers")
    if isinstance(importers, dict):  # lockfile v6+
        return _pnpm_importer_matches(manifest, importers.get("."))
    return _pnpm_flat_matches(manifest, lock.get("specifiers"))


def _pnpm_importer_matches(manifest: Mapping[str, Any], root: object) -> bool:
    """A v6+ root importer: each field's ``{name: {specifier, version}}``."""
    if not isinstance(root, dict):
        return False
    for name in COMPARED_FIELDS:
        locked = root.get(name) or {}
        if not isinstance(locked, dict):
            return False
        specifiers = {
            str(k): str(v.get("specifier")) if isinstance(v, dict) else None
            for k, v in locked.items()
        }
        if specifiers != _wanted(manifest).get(name, {}):
            return False
    return True


def _pnpm_flat_matches(manifest: Mapping[str, Any], flat: object) -> bool:
    """A v5 lockfile: one flat ``specifiers`` map for every field."""
    if not isinstance(flat, dict):
        return False
    merged: dict[str, str] = {}
    for deps in _wanted(manifest).values():
        merged.update(deps)
    return {str(k): str(v) for k, v in flat.items()} == merged


def _yarn_classic_keys(text: str) -> set[str]:
    """The ``name@range`` entries of a yarn v1 lockfile (its unindented header lines)."""
    keys: set[str] = set()
    for line in text.splitlines():
        if not line or line[0] in " \t#" or not line.rstrip().endswith(":"):
            continue
        for part in line.rstrip()[:-1].split(","):
            keys.add(part.strip().strip('"'))
    return keys


def yarn_classic_matches(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """True when every ``name@range`` of package.json has an entry in a yarn v1 lockfile."""
    keys = _yarn_classic_keys(raw.decode("utf-8", errors="replace"))
    return all(
        f"{name}@{spec}" in keys
        for deps in _wanted(manifest).values()
        for name, spec in deps.items()
    )


def _berry_descriptor(name: str, spec: str) -> str:
    # Yarn 2+ writes a bare range as the npm: protocol; anything with a protocol stays.
    if re.match(r"^[a-z]+:", spec):
        return f"{name}@{spec}"
    return f"{name}@npm:{spec}"


def yarn_berry_matches(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """True when every dependency of package.json has its descriptor in a yarn 2+ lockfile."""
    lock = load_yaml(raw)
    if lock is None:
        return False
    keys: set[str] = set()
    for header in lock:
        keys.update(part.strip() for part in str(header).split(","))
    return all(
        _berry_descriptor(name, spec) in keys
        for deps in _wanted(manifest).values()
        for name, spec in deps.items()
    )


def bun_matches(manifest: Mapping[str, Any], raw: bytes) -> bool:
    """True when ``bun.lock``'s root workspace records exactly package.json's dependencies."""
    lock = load_jsonc(raw)
    workspaces = lock.get("workspaces") if lock else None
    root = workspaces.get("") if isinstance(workspaces, dict) else None
    if not isinstance(root, dict):
        return False
    wanted = _wanted(manifest)
    return all((root.get(f) or {}) == wanted.get(f, {}) for f in COMPARED_FIELDS)


def lockfile_matches(lockfile: str, manifest: Mapping[str, Any], raw: bytes) -> bool | None:
    """Whether ``lockfile`` (its name) still matches ``manifest``; None when Kiln cannot tell."""
    if lockfile in NPM_LOCKFILES:
        return npm_matches(manifest, raw)
    if lockfile == PNPM_LOCKFILE:
        return pnpm_matches(manifest, raw)
    if lockfile == YARN_LOCKFILE:
        if is_berry_lockfile(raw):
            return yarn_berry_matches(manifest, raw)
        return yarn_classic_matches(manifest, raw)
    if lockfile == "bun.lock":
        return bun_matches(manifest, raw)
    return None  # bun.lockb: a binary format; bun itself says whether it is frozen-clean
