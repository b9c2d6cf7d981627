"""What Kiln takes from a yarn 2+ project's ``.yarnrc.yml``. Pure.

Kiln never lets yarn read that file: its ``yarnPath`` and ``plugins`` are code, and they would
run in the install container, which has network (``builds/managers.py``). Two of its
settings change what yarn writes into ``yarn.lock``, so a frozen install of a lockfile made
with them is refused without them ("The lockfile would have been modified", tried by hand
with yarn 4.18.1):

- ``compressionLevel`` (a yarn 3 project moved to 4 keeps ``mixed``, as yarn's migration
  guide says): a plain value, passed on as ``YARN_COMPRESSION_LEVEL``;
- ``packageExtensions``: a map, which yarn takes from an rc file only, never from its
  environment; not applied, and the build says so, so the resolve that follows the refused
  frozen install is explained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.project.lockfiles import load_yaml

RC_FILE = ".yarnrc.yml"
COMPRESSION_LEVEL = re.compile(r"(?:[0-9]|mixed)")
UNAPPLIED = ("packageExtensions",)


@dataclass(frozen=True)
class BerryRc:
    """yarn settings for the build's environment, and what the build should be told."""

    env: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()


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
    unapplied = [key for key in UNAPPLIED if key in settings]
    warnings = (
        (
            f"{RC_FILE} sets {', '.join(unapplied)}, which Kiln does not apply (it never lets "
            f"yarn read {RC_FILE}: its plugins and yarnPath are code); if yarn.lock was made "
            "with them, yarn finds it out of date and resolves it anew",
        )
        if unapplied
        else ()
    )
    return BerryRc(tuple(env), warnings)
