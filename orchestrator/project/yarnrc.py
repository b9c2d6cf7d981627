"""What Kiln takes from a yarn 2+ project's ``.yarnrc.yml``. Pure.

Kiln never lets yarn read that file: its ``yarnPath`` and ``plugins`` are code, and they would
run in the install container, which has network (``builds/managers.py``). Two of its
settings change what yarn writes into ``yarn.lock``, so a frozen install of a lockfile made
with them is refused without them ("The lockfile would have been modified", tried by hand
with yarn 4.18.1):

- ``compressionLevel`` (a yarn 3 project moved to 4 keeps ``mixed``, as yarn's migration
  guide says): a plain value, passed on as ``YARN_COMPRESSION_LEVEL``;
- ``packageExtensions``: a map, which yarn takes from an rc file only, never from its
  environment. Kiln writes an rc file of its own holding only that map (``BerryRc.rc``),
  rebuilt from the parsed project file, when every dependency it adds comes from the
  registry; else the build applies none and says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.project.dependency_sources import EXEC_PROTOCOL, spec_source
from orchestrator.project.lockfiles import load_yaml

RC_FILE = ".yarnrc.yml"
COMPRESSION_LEVEL = re.compile(r"(?:[0-9]|mixed)")
EXTENSIONS = "packageExtensions"
SPEC_MAPS = ("dependencies", "peerDependencies")
# Only registry ranges, tags and npm: aliases: no protocol that reads a file or runs one.
PROTOCOL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class BerryRc:
    """yarn settings for the build's environment, and what the build should be told."""

    env: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    rc: str = ""  # the rc file Kiln writes for yarn (JSON, which YAML reads), or ""


def read_berry_rc(raw: bytes | None) -> BerryRc:
    """The settings Kiln passes on from a project's ``.yarnrc.yml`` (None: no such file)."""
    settings = load_yaml(raw) if raw is not None else None
    if settings is None:
        return BerryRc()
    env: list[tuple[str, str]] = []
    level = settings.get("compressionLevel")
    plain = isinstance(level, int | str) and not isinstance(level, bool)
    if plain and COMPRESSION_LEVEL.fullmatch(str(level)):
        env.append(("YARN_COMPRESSION_LEVEL", str(level)))
    if EXTENSIONS not in settings:
        return BerryRc(tuple(env))
    problem = extensions_problem(settings[EXTENSIONS])
    if problem is not None:
        warning = (
            f"{RC_FILE}: {EXTENSIONS} not applied ({problem}); if yarn.lock was made with "
            "them, yarn finds it out of date and resolves it anew"
        )
        return BerryRc(tuple(env), (warning,))
    rc = json.dumps({EXTENSIONS: settings[EXTENSIONS]}, sort_keys=True)
    return BerryRc(tuple(env), rc=rc)


def extensions_problem(extensions: object) -> str | None:
    """Why Kiln would not hand ``packageExtensions`` to yarn, or None when it may: a map of
    descriptors to ``dependencies``/``peerDependencies`` (registry specs only) and
    ``peerDependenciesMeta``."""
    if not isinstance(extensions, Mapping):
        return "it is not a map"
    for descriptor, extension in extensions.items():
        if not isinstance(descriptor, str) or not isinstance(extension, Mapping):
            return f"{descriptor!r} is not a map"
        for field, value in extension.items():
            if field == "peerDependenciesMeta":
                if not _is_meta(value):
                    return f"{descriptor}.{field} is not a map of flags"
                continue
            if field not in SPEC_MAPS or not isinstance(value, Mapping):
                return f"{descriptor}.{field} is not a map Kiln applies"
            for name, spec in value.items():
                if not isinstance(name, str) or not _from_registry(spec):
                    return f"{descriptor}.{field}.{name} is {spec!r}, not a registry range"
    return None


def _from_registry(spec: object) -> bool:
    if not isinstance(spec, str) or EXEC_PROTOCOL.search(spec):
        return False
    # an alias's range is what follows its name's last "@" (npm:@scope/name@^2)
    inner = spec[4:].rpartition("@")[2] if spec.startswith("npm:") else spec
    return spec_source(spec) == "registry" and not PROTOCOL.match(inner)


def _is_meta(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(name, str)
        and isinstance(meta, Mapping)
        and all(isinstance(key, str) and isinstance(flag, bool) for key, flag in meta.items())
        for name, meta in value.items()
    )
