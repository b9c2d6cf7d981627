"""Which Node and which package manager a build runs with. Pure functions only.

Node: the submit's ``node``, then ``.nvmrc``, ``.node-version``, ``engines.node`` (a semver
range: the newest offered major that satisfies it), else the default major. An explicit
request that is not offered is refused (:class:`UnsupportedEnvironment`); a project file
that asks for what is not offered gets the nearest offered major and a warning.

Package manager: ``packageManager`` in package.json (corepack's rule: an exact version,
``yarn@1`` is classic, ``yarn@2+`` is berry), else the lockfile (``yarn.lock`` is classic or
berry by its format), else npm. The version is the image's pin unless ``packageManager``
names another; that one is fetched at install time (see ``build/managers.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import semantic_version

from orchestrator.errors import UnsupportedEnvironment
from orchestrator.project.lockfiles import (
    BUN_LOCKFILES,
    LOCKFILE_PRECEDENCE,
    NPM_LOCKFILES,
    PNPM_LOCKFILE,
    YARN_LOCKFILE,
    is_berry_lockfile,
    lockfile_matches,
)
from orchestrator.project.yarnrc import RC_FILE, BerryRc, read_berry_rc

DEFAULT_NODE_MAJOR = 22
NODE_FILES = (".nvmrc", ".node-version")
#: nvm's LTS code names (``lts/iron`` in an .nvmrc).
LTS_NAMES = {
    "argon": 4,
    "boron": 6,
    "carbon": 8,
    "dubnium": 10,
    "erbium": 12,
    "fermium": 14,
    "gallium": 16,
    "hydrogen": 18,
    "iron": 20,
    "jod": 22,
    "krypton": 24,
}
_EXACT = re.compile(r"^\d+\.\d+\.\d+$")
_MAJOR = re.compile(r"^v?(\d+)(?:\.(?:\d+|x|\*))?(?:\.(?:\d+|x|\*))?$")
_PACKAGE_MANAGER = re.compile(r"^(npm|pnpm|yarn|bun)@(\d+\.\d+\.\d+)(?:\+(sha\d+)\.([0-9a-f]+))?$")


class Manager(StrEnum):
    """A package manager Kiln installs with (yarn 1 and yarn 2+ are different programs)."""

    NPM = "npm"
    PNPM = "pnpm"
    YARN_CLASSIC = "yarn-classic"
    YARN_BERRY = "yarn-berry"
    BUN = "bun"

    @property
    def command(self) -> str:
        """The program's name on PATH."""
        return "yarn" if self in (Manager.YARN_CLASSIC, Manager.YARN_BERRY) else self.value

    @property
    def package(self) -> str:
        """The npm package the program comes from."""
        return {
            Manager.YARN_CLASSIC: "yarn",
            Manager.YARN_BERRY: "@yarnpkg/cli-dist",
        }.get(self, self.value)


@dataclass(frozen=True)
class Offer:
    """What the sandbox image offers: Node majors (to full versions) and pinned managers."""

    node: Mapping[int, str]
    managers: Mapping[Manager, str]
    default_major: int = DEFAULT_NODE_MAJOR

    def majors(self) -> list[int]:
        """The offered majors, oldest first."""
        return sorted(self.node)

    def describe(self) -> str:
        """``20, 22 (default), 24``: for messages."""
        return ", ".join(
            f"{m} (default)" if m == self.default_major else str(m) for m in self.majors()
        )


@dataclass(frozen=True)
class NodeChoice:
    """The Node a build runs with, where the choice came from, and what to tell the user."""

    major: int
    version: str
    source: str  # "request", ".nvmrc", ".node-version", "engines.node" or "default"
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManagerChoice:
    """The package manager a build installs with, and its lockfile."""

    manager: Manager
    version: str
    source: str  # "packageManager", a lockfile's name, or "default"
    lockfile: str | None = None
    integrity: str | None = None  # corepack's "+sha512.<hex>" of packageManager, if given
    warnings: tuple[str, ...] = ()

    def pinned_by_image(self, offer: Offer) -> bool:
        """True when the image carries this exact version (else it is fetched at install)."""
        return offer.managers.get(self.manager) == self.version


@dataclass(frozen=True)
class Environment:
    """Node, package manager and install mode of one build."""

    node: NodeChoice
    manager: ManagerChoice
    frozen: bool  # install exactly the lockfile (else resolve, with a warning)
    warnings: tuple[str, ...] = field(default=())
    # the manager's settings from the project's own files (yarnrc.py): pairs for its env
    settings: tuple[tuple[str, str], ...] = field(default=())
    # an rc file for the manager from the project's own (yarnrc.py: its packageExtensions)
    rc: str = ""

    def public(self) -> dict[str, str]:
        """The build body's ``environment``: full versions."""
        return {
            "node": self.node.version,
            "package_manager": f"{self.manager.manager.command}@{self.manager.version}",
        }


# -- Node ------------------------------------------------------------------------------


def _nearest(offer: Offer, wanted: Sequence[int]) -> int:
    """The offered major closest to any of ``wanted``; the newer one on a tie."""
    return min(offer.majors(), key=lambda m: (min(abs(m - w) for w in wanted), -m))


def parse_request(value: object) -> int:
    """A submit's ``node`` (``22``, ``"22"``, ``"v22.1.0"``, ``"22.x"``) as a major."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        found = _MAJOR.match(value.strip())
        if found:
            return int(found.group(1))
    raise UnsupportedEnvironment(f'"node" must be a Node major such as 22, not {value!r}')


def check_request(offer: Offer, value: object) -> int:
    """The requested major if offered; else 400 ``unsupported_environment`` naming the offer."""
    major = parse_request(value)
    if major not in offer.node:
        raise UnsupportedEnvironment(
            f"Node {major} is not offered; offered majors: {offer.describe()}"
        )
    return major


def _version_file_majors(offer: Offer, text: str) -> list[int] | None:
    """The majors an .nvmrc / .node-version line asks for, or None when it means nothing."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    value = next((line for line in lines if line), "").lower()
    if not value:
        return None
    if value in ("node", "stable", "latest", "current"):
        return [offer.majors()[-1]]
    if value.startswith("lts/"):
        name = value.removeprefix("lts/")
        if name in ("*", "latest"):
            lts = [m for m in offer.majors() if m in LTS_NAMES.values()]
            return [lts[-1] if lts else offer.default_major]
        return [LTS_NAMES[name]] if name in LTS_NAMES else None
    found = _MAJOR.match(value)
    if found:
        return [int(found.group(1))]
    return _range_majors(value)


def _range_majors(text: str) -> list[int] | None:
    """The majors (0..99) a semver range admits at all, or None when it is not a range."""
    try:
        spec = semantic_version.NpmSpec(text)
    except ValueError:
        return None
    majors = []
    for major in range(100):
        # A major is admitted if the range holds its first or a late release of it.
        for probe in (f"{major}.0.0", f"{major}.999.999"):
            if spec.match(semantic_version.Version(probe)):
                majors.append(major)
                break
    return majors


def _satisfying(offer: Offer, text: str) -> list[int] | None:
    """Offered majors whose full version satisfies the range ``text`` (None: not a range)."""
    try:
        spec = semantic_version.NpmSpec(text)
    except ValueError:
        return None
    return [m for m in offer.majors() if spec.match(semantic_version.Version.coerce(offer.node[m]))]


def choose_node(
    offer: Offer,
    manifest: Mapping[str, Any],
    files: Mapping[str, bytes],
    requested: object = None,
) -> NodeChoice:
    """The Node major of a build (see the module docstring for the order)."""
    engines = manifest.get("engines")
    engines_node = engines.get("node") if isinstance(engines, dict) else None
    asked = _asked_in_files(offer, files)
    warnings: list[str] = []
    if requested is not None:
        major = check_request(offer, requested)
        for source, majors in asked:
            if major not in majors:
                warnings.append(
                    f"{source} asks for Node {_show(majors)}; this build uses the requested "
                    f"Node {offer.node[major]}"
                )
                break
        return NodeChoice(major, offer.node[major], "request", tuple(warnings))
    for source, majors in asked:
        if any(m in offer.node for m in majors):
            major = max(m for m in majors if m in offer.node)
            return NodeChoice(major, offer.node[major], source)
        major = _nearest(offer, majors)
        warnings.append(
            f"{source} asks for Node {_show(majors)}, which Kiln does not offer; building with "
            f"Node {offer.node[major]}, the nearest offered (offered: {offer.describe()})"
        )
        return NodeChoice(major, offer.node[major], source, tuple(warnings))
    for source, text in _unreadable(offer, files):
        warnings.append(f"{source} says {text!r}, which is not a Node version; ignored")
    if isinstance(engines_node, str) and engines_node.strip():
        return _from_engines(offer, engines_node.strip(), warnings)
    major = offer.default_major
    return NodeChoice(major, offer.node[major], "default", tuple(warnings))


def _from_engines(offer: Offer, text: str, warnings: list[str]) -> NodeChoice:
    satisfying = _satisfying(offer, text)
    if satisfying:
        major = satisfying[-1]
        return NodeChoice(major, offer.node[major], "engines.node", tuple(warnings))
    if satisfying is None:
        warnings.append(f'engines.node "{text}" is not a semver range; ignored')
        major = offer.default_major
        return NodeChoice(major, offer.node[major], "default", tuple(warnings))
    admitted = _range_majors(text) or [offer.default_major]
    major = _nearest(offer, admitted)
    warnings.append(
        f'engines.node "{text}" admits no offered Node; building with Node '
        f"{offer.node[major]}, the nearest offered (offered: {offer.describe()})"
    )
    return NodeChoice(major, offer.node[major], "engines.node", tuple(warnings))


def _asked_in_files(offer: Offer, files: Mapping[str, bytes]) -> list[tuple[str, list[int]]]:
    asked = []
    for name in NODE_FILES:
        if name in files:
            majors = _version_file_majors(offer, files[name].decode("utf-8", errors="replace"))
            if majors:
                asked.append((name, majors))
    return asked


def _unreadable(offer: Offer, files: Mapping[str, bytes]) -> list[tuple[str, str]]:
    found = []
    for name in NODE_FILES:
        if name in files:
            text = files[name].decode("utf-8", errors="replace").strip()
            if text and not _version_file_majors(offer, text):
                found.append((name, text[:40]))
    return found


def _show(majors: Sequence[int]) -> str:
    if len(majors) == 1:
        return str(majors[0])
    return f"{majors[0]}-{majors[-1]}"


# -- package manager ---------------------------------------------------------------------


def _lockfile_manager(name: str, raw: bytes) -> Manager:
    if name == PNPM_LOCKFILE:
        return Manager.PNPM
    if name == YARN_LOCKFILE:
        return Manager.YARN_BERRY if is_berry_lockfile(raw) else Manager.YARN_CLASSIC
    if name in BUN_LOCKFILES:
        return Manager.BUN
    return Manager.NPM


def _lockfile_for(manager: Manager, lockfiles: Mapping[str, bytes]) -> str | None:
    names = {
        Manager.NPM: NPM_LOCKFILES,
        Manager.PNPM: (PNPM_LOCKFILE,),
        Manager.YARN_CLASSIC: (YARN_LOCKFILE,),
        Manager.YARN_BERRY: (YARN_LOCKFILE,),
        Manager.BUN: BUN_LOCKFILES,
    }[manager]
    return next((n for n in names if n in lockfiles), None)


def parse_package_manager(value: object) -> tuple[Manager, str, str | None] | None:
    """``packageManager`` (``pnpm@9.15.0``, ``yarn@4.5.0+sha512.<hex>``) per corepack's rules:
    (manager, exact version, integrity) or None when it is not a valid field."""
    if not isinstance(value, str):
        return None
    found = _PACKAGE_MANAGER.match(value.strip())
    if found is None:
        return None
    name, version, algo, digest = found.groups()
    integrity = f"{algo}.{digest}" if algo else None
    if name == "yarn":
        berry = int(version.split(".")[0]) >= 2
        return (Manager.YARN_BERRY if berry else Manager.YARN_CLASSIC), version, integrity
    return Manager(name), version, integrity


def choose_manager(
    offer: Offer, manifest: Mapping[str, Any], lockfiles: Mapping[str, bytes]
) -> ManagerChoice:
    """The package manager of a build and the lockfile it installs from."""
    warnings: list[str] = []
    present = [n for n in LOCKFILE_PRECEDENCE if n in lockfiles]
    declared = manifest.get("packageManager")
    parsed = parse_package_manager(declared)
    if declared is not None and parsed is None:
        warnings.append(
            f"packageManager {str(declared)[:60]!r} is not <npm|pnpm|yarn|bun>@<exact version>; "
            "choosing the package manager by the lockfile"
        )
    if parsed is not None:
        manager, version, integrity = parsed
        lockfile = _lockfile_for(manager, lockfiles)
        if manager in (Manager.YARN_CLASSIC, Manager.YARN_BERRY) and lockfile:
            found = _lockfile_manager(lockfile, lockfiles[lockfile])
            if found != manager:
                warnings.append(
                    f"packageManager is yarn@{version} but yarn.lock is in the "
                    f"{'berry' if found == Manager.YARN_BERRY else 'classic'} format; "
                    f"yarn@{version} will rewrite it"
                )
        chosen = ManagerChoice(manager, version, "packageManager", lockfile, integrity)
    elif present:
        lockfile = present[0]
        manager = _lockfile_manager(lockfile, lockfiles[lockfile])
        chosen = ManagerChoice(manager, offer.managers[manager], lockfile, lockfile)
    else:
        return ManagerChoice(Manager.NPM, offer.managers[Manager.NPM], "default", None, None)
    ignored = [n for n in present if n != chosen.lockfile]
    if ignored:
        warnings.append(
            f"{', '.join(ignored)} ignored: installing with {chosen.manager.command} "
            f"from {chosen.lockfile or 'package.json (no lockfile of its own)'}"
        )
    return ManagerChoice(
        chosen.manager,
        chosen.version,
        chosen.source,
        chosen.lockfile,
        chosen.integrity,
        tuple(warnings),
    )


def frozen_install(
    choice: ManagerChoice, manifest: Mapping[str, Any], lockfiles: Mapping[str, bytes]
) -> tuple[bool, list[str]]:
    """Whether to install frozen from the lockfile, and the warnings that go with the answer."""
    if choice.lockfile is None:
        return False, [
            f"no lockfile for {choice.manager.command}; resolving package.json's ranges "
            f"with {choice.manager.command} install (versions may differ from the author's)"
        ]
    matches = lockfile_matches(choice.lockfile, manifest, lockfiles[choice.lockfile])
    if matches is False:
        return False, [
            f"{choice.lockfile} does not match package.json; resolving with a normal "
            f"{choice.manager.command} install"
        ]
    return True, []  # None (bun.lockb): frozen first; the install falls back if bun refuses


def choose_environment(
    offer: Offer,
    manifest: Mapping[str, Any],
    files: Mapping[str, bytes],
    requested_node: object = None,
) -> Environment:
    """Node, package manager and install mode for a project.

    ``files`` holds at least the project's top-level ``.nvmrc``, ``.node-version``,
    lockfiles and ``.yarnrc.yml`` (any other entries are ignored).
    """
    node = choose_node(offer, manifest, files, requested_node)
    lockfiles = {n: files[n] for n in LOCKFILE_PRECEDENCE if n in files}
    manager = choose_manager(offer, manifest, lockfiles)
    frozen, install_warnings = frozen_install(manager, manifest, lockfiles)
    rc = read_berry_rc(files.get(RC_FILE)) if manager.manager == Manager.YARN_BERRY else BerryRc()
    warnings = (*node.warnings, *manager.warnings, *install_warnings, *rc.warnings)
    return Environment(node, manager, frozen, warnings, rc.env, rc.rc)


#: The top-level files :func:`choose_environment` reads.
ENVIRONMENT_FILES = (*NODE_FILES, *LOCKFILE_PRECEDENCE, RC_FILE)
