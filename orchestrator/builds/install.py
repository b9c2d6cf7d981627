"""Which install runs, decided without running anything (pure).

A build's dependencies come one of three ways (``route``):

- ``none``: package.json declares no dependency; only the project's own install scripts
  run, if it has any;
- ``layer``: a shared read-only dependency layer (``provision``), made on a miss, then the
  project's own install scripts in its own container against it;
- ``private``: the package manager installs into the build's workspace (layers off, or
  the project cannot share one).

After a failed step: ``retry_install`` gives the retry the package manager's own error
suggests (npm ci refusing a lockfile, ERESOLVE); ``leave_layer`` says when to fall back
from a layer to a private install (the project wrote into the read-only layer);
otherwise the build fails. What differs per package manager sits behind ``PackageManager``:
``NPM`` here, and ``environment_install.ChosenManager`` for a build's chosen Node and
manager (pnpm, yarn 1, yarn 2+, bun, or npm on another Node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypedDict

from orchestrator.builds import plan
from orchestrator.builds.provision import root_scripts_step
from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project.npm import LOCKFILES, has_dependencies, root_install_scripts
from orchestrator.sandbox.step import Step

Manifest = Mapping[str, object]  # a parsed package.json (any JSON object)
READ_ONLY_MARKERS = ("EROFS", "read-only file system")
LAYER_WRITE_WARNING = (
    "warning: the project writes into node_modules, which is a shared read-only "
    "layer; installing its dependencies privately instead"
)


class Route(StrEnum):
    """How a build's dependencies get there (also its ``cache.layer`` before a lookup)."""

    NONE = "none"
    LAYER = "layer"
    PRIVATE = "private"


class CacheInfo(TypedDict, total=False):
    """How a build's caches answered: its ``cache`` field (the contract's ``cache`` object)."""

    layer: str  # none | private | hit | miss
    layer_key: str
    resolution: str  # hit | miss (a remembered resolution of package.json's ranges)


class PackageManager(Protocol):
    """What the install strategy needs to know about one package manager."""

    @property
    def name(self) -> str:
        """The manager's program name."""
        ...

    @property
    def lockfiles(self) -> Sequence[str]:
        """The lockfile names read from the workspace."""
        ...

    @property
    def lockfile(self) -> str:
        """The lockfile a private install leaves (read for the steps after it)."""
        ...

    def install_plan(self, manifest: Manifest, lockfiles: Mapping[str, bytes]) -> plan.InstallPlan:
        """The private install step, and what to tell the user about it."""
        ...

    def retry(self, step: Step, output: str) -> tuple[Step, str] | None:
        """After a failed install step, the retry its output suggests (with the reason)."""
        ...

    def steps_after_install(self, manifest: Manifest, lock_after: bytes | None) -> list[Step]:
        """What runs after a private install, given the lockfile it left."""
        ...

    def build_step(self, manifest: Manifest, env: Mapping[str, str]) -> Step:
        """The build step, with the submit's build settings ``env``."""
        ...

    def equip(self, step: Step) -> Step:
        """``step`` as it runs: with the manager's Node, PATH and settings (``Step.toolenv``)."""
        ...

    def explain(self, step: Step, error: BuildError) -> BuildError:
        """A failed step's error, told in the manager's own words."""
        ...


class Npm:
    """npm: ``npm ci`` for an in-sync lockfile, else ``npm install``; scripts in a rebuild."""

    name = "npm"
    lockfiles: Sequence[str] = LOCKFILES
    lockfile = "package-lock.json"

    def install_plan(self, manifest: Manifest, lockfiles: Mapping[str, bytes]) -> plan.InstallPlan:
        """``npm ci`` or ``npm install`` with scripts off (see ``plan.plan_install``)."""
        return plan.plan_install(manifest, lockfiles)

    def retry(self, step: Step, output: str) -> tuple[Step, str] | None:
        """npm's own advice: ``npm install`` after ``npm ci`` refused, legacy peers on ERESOLVE."""
        return plan.install_fallback(step, output)

    def steps_after_install(self, manifest: Manifest, lock_after: bytes | None) -> list[Step]:
        """``npm rebuild`` (offline) when a package or the project has install scripts."""
        return [plan.lifecycle_step()] if plan.needs_lifecycle_scripts(manifest, lock_after) else []

    def build_step(self, manifest: Manifest, env: Mapping[str, str]) -> Step:
        """The project's build script (else ``vite build``) with npm."""
        return plan.build_step(manifest, env)

    def equip(self, step: Step) -> Step:
        """The image's default Node and npm: nothing to add."""
        return step

    def explain(self, step: Step, error: BuildError) -> BuildError:
        """plan's messages already speak npm."""
        return error


NPM = Npm()


@dataclass(frozen=True)
class InstallFacts:
    """The part of a project the install decision looks at."""

    has_dependencies: bool
    root_scripts: tuple[str, ...]  # the project's own preinstall/install/postinstall

    @classmethod
    def of(cls, manifest: Manifest) -> InstallFacts:
        """The facts of a parsed package.json."""
        return cls(has_dependencies(manifest), tuple(root_install_scripts(manifest)))


def route(facts: InstallFacts, *, cache_layers: bool) -> Route:
    """How the dependencies come (a layer route may still end private: the provider decides)."""
    if not cache_layers:
        return Route.PRIVATE
    return Route.LAYER if facts.has_dependencies else Route.NONE


def root_scripts(facts: InstallFacts) -> Step | None:
    """The project's own install scripts as a step (offline, its workspace), if it has any."""
    return root_scripts_step(facts.root_scripts) if facts.root_scripts else None


def wrote_into_layer(output: Iterable[str]) -> bool:
    """True when a step's output says it tried to write into the read-only node_modules."""
    return any(
        "node_modules" in line and any(m.lower() in line.lower() for m in READ_ONLY_MARKERS)
        for line in output
    )


@dataclass(frozen=True)
class Retry:
    """Run this step instead, after telling the user why."""

    step: Step
    warning: str


def retry_install(
    step: Step, code: str, output: Sequence[str], manager: PackageManager = NPM
) -> Retry | None:
    """After a failed install step, the retry the package manager's output suggests, if any.

    ``code`` is the failure's error code (a timeout or OOM is never retried), ``output``
    the failed step's own lines.
    """
    if code != step.failure_code:
        return None
    retry = manager.retry(step, "\n".join(output))
    return None if retry is None else Retry(retry[0], f"warning: {retry[1]}")


def leave_layer(code: str, output: Sequence[str], *, on_layer: bool) -> bool:
    """After a failed step on a layer: was it a write into it? Then install privately."""
    return (
        on_layer
        and code in (ErrorCode.BUILD_FAILED, ErrorCode.INSTALL_FAILED)
        and wrote_into_layer(output)
    )
