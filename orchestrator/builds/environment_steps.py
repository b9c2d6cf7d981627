"""What runs a chosen environment's install, for a build and a dev session alike.

A build (``pipeline.BuildRun``) and a dev session (``dev/install.SessionInstaller``) run
their steps their own way (their container label, their log, their cancel), and hand
that in as ``StepHooks``; the sequence is the same for both: what to tell the user about
the choice, packageManager's exact version fetched when the image lacks it, the shared
dependency layer (npm's, or a pnpm, yarn or bun lockfile's: ``provide_layer``), and the
private install (frozen, scripts off, through the proxy;
then the dependencies' scripts offline by the manager's rules).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.builds import install, managers
from orchestrator.builds.environment_install import ChosenManager
from orchestrator.builds.environment_io import environment_toolchain
from orchestrator.builds.environment_layers import layer_recipe, refused_lockfile
from orchestrator.builds.install import Manifest
from orchestrator.builds.provision import LayerProvider, LayerUse
from orchestrator.cache.layers import layer_store
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project.environment import Environment, Manager, Offer
from orchestrator.sandbox.egress.service import proxy_url
from orchestrator.sandbox.protocol import StepRunner
from orchestrator.sandbox.step import Step, Toolchain
from orchestrator.settings import Settings

PNPM_WORKSPACE = "pnpm-workspace.yaml"  # pnpm's onlyBuiltDependencies may live there


@dataclass(frozen=True)
class StepHooks:
    """How the caller runs one step, and tells its user something."""

    run: Callable[[Step, Path], object]  # one step in a folder (equipped by the caller)
    run_install: Callable[[Step, Path], None]  # an install step, with its manager's retries
    note: Callable[[str], None]  # a [kiln] line
    prepare_dir: Callable[[Path], None]  # hand a folder to the sandbox user


def environment_notes(chosen: Environment) -> list[str]:
    """The ``[kiln]`` lines that say which Node and manager run, and why not another."""
    public = chosen.public()
    lines = [
        f"environment: Node {public['node']} ({chosen.node.source}), "
        f"{public['package_manager']} ({chosen.manager.source})"
    ]
    warnings = chosen.warnings
    if chosen.manager.manager == Manager.NPM:  # npm's install plan says its own lockfile's
        warnings = (*chosen.node.warnings, *chosen.manager.warnings)
    return lines + [f"warning: {warning}" for warning in warnings]


def chosen_manager(
    chosen: Environment, settings: Settings, workspace_yaml: bytes | None, runner: StepRunner
) -> ChosenManager:
    """The install strategy of ``chosen`` with Kiln's registry and egress proxy (and, for
    bun, the image's bun's default trusted list: ``runner`` reads it once per image)."""
    is_bun = chosen.manager.manager == Manager.BUN
    return ChosenManager(
        chosen,
        registry=settings.npm_registry,
        proxy=proxy_url(settings),
        workspace_yaml=workspace_yaml,
        bun_defaults=runner.bun_default_trusted() if is_bun else frozenset(),
    )


def fetch_manager(
    chosen: ChosenManager, offer: Offer, settings: Settings, owner: str, hooks: StepHooks
) -> ChosenManager:
    """``chosen`` with packageManager's exact version when the image lacks it: fetched once
    per version into a shared folder (no project file there), then mounted read-only.

    ``owner`` names the staging folder (a build id, a session's label)."""
    choice = chosen.env.manager
    if choice.pinned_by_image(offer):
        return chosen
    wanted = f"{choice.manager.command}@{choice.version}"
    root = settings.var_dir.resolve() / "cache" / "managers"
    folder = root / f"{choice.manager.value}@{choice.version}"
    if not (folder / "bin").is_dir():
        hooks.note(f"fetching {wanted} (packageManager) from the registry")
        staging = root / f".staging-{owner}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        hooks.prepare_dir(staging)
        try:
            step = managers.fetch_step(choice.manager, choice.version, choice.integrity)
            hooks.run(step, staging)
            with contextlib.suppress(OSError):  # a concurrent build may have put it first
                os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        hooks.note(f"{wanted} ready")
    return ChosenManager(chosen.env, chosen.registry, chosen.proxy, folder, chosen.workspace_yaml)


def layer_provider(
    settings: Settings,
    toolchain: Toolchain,
    env: Environment | None,
    hooks: StepHooks,
    wait: Callable[[], None],
) -> LayerProvider:
    """The shared npm layers, keyed by the image's toolchain with ``env``'s Node and manager."""
    return LayerProvider(
        layers=layer_store(settings),
        resolutions=ResolutionStore(settings.resolutions_dir, settings.resolution_ttl_s),
        toolchain=environment_toolchain(toolchain, env),
        registry=settings.npm_registry,
        run=hooks.run_install,
        note=hooks.note,
        wait=wait,
        prepare_dir=hooks.prepare_dir,
        lifecycle=managers.npm_lifecycle_step,  # an optional package's failure is dropped
    )


@dataclass(frozen=True)
class LayerInputs:
    """What a project's layer is made from: its install folder's package.json, lockfiles
    and top-level names, ``pnpm-workspace.yaml``, and bun's default trusted list (for a bun
    project without ``trustedDependencies``)."""

    manifest: Manifest
    lockfiles: Mapping[str, bytes]
    project_files: list[str]
    workspace_yaml: bytes | None = None
    bun_defaults: frozenset[str] = frozenset()


def provide_layer(
    provider: LayerProvider,
    hooks: StepHooks,
    env: Environment | None,
    inputs: LayerInputs,
    step_output: Callable[[], str],
) -> LayerUse | None:
    """The shared dependency layer of a project (made now if missing), or None (said why)
    to install privately: npm's from ``provider.provide`` (its install with the manager's
    retries), a pnpm, yarn or bun lockfile's from its recipe (``environment_layers``), run
    by ``hooks.run``, never retried. ``step_output``: the last step's output, to
    tell a lockfile the manager refused from any other failure."""
    if env is None or env.manager.manager == Manager.NPM:
        return provider.provide(inputs.manifest, dict(inputs.lockfiles), inputs.project_files)
    recipe = layer_recipe(
        env,
        inputs.manifest,
        inputs.lockfiles,
        inputs.project_files,
        workspace_yaml=inputs.workspace_yaml,
        registry=provider.registry,
        bun_defaults=inputs.bun_defaults,
    )
    if isinstance(recipe, str):
        provider.note(f"dependency layer: not shared because {recipe}; installing privately")
        return None
    # no retry: a layer is never made from a re-resolution
    plain = dataclasses.replace(provider, run=hooks.run)
    try:
        return plain.provide_recipe(recipe)
    except BuildError as exc:
        refused = refused_lockfile(env, recipe.install, step_output())
        if exc.code != ErrorCode.INSTALL_FAILED or not refused:
            raise
        provider.note(
            f"dependency layer: not shared because {env.manager.manager.command} "
            "refused the lockfile; installing privately"
        )
        return None


def install_privately(
    manager: install.PackageManager,
    manifest: Manifest,
    lockfiles: Mapping[str, bytes],
    *,
    workspace: Path,
    registry: str,
    hooks: StepHooks,
) -> None:
    """The manager installs into ``workspace``: its install (with the retries its errors
    suggest), then the steps after it, read from the lockfile it left."""
    env = manager.env if isinstance(manager, ChosenManager) else None
    yarn_lock = workspace / "yarn.lock"
    if env is not None and env.manager.manager == Manager.YARN_CLASSIC and "yarn.lock" in lockfiles:
        # yarn 1 lockfiles name yarn's alias of npm's registry: resolve through Kiln's
        rewritten = managers.yarn_lock_for_registry(lockfiles["yarn.lock"], registry)
        write_in_place(yarn_lock, rewritten)
    chosen = manager.install_plan(manifest, lockfiles)
    for warning in chosen.warnings:
        hooks.note(f"warning: {warning}")
    hooks.run_install(chosen.step, workspace)
    for step in manager.steps_after_install(manifest, read_plain(workspace / manager.lockfile)):
        hooks.run(step, workspace)


def drop_mount_point(install_dir: Path) -> None:
    """Remove the empty ``node_modules`` Docker made (as root) to mount a layer that is no
    longer used, so that a private install can make its own there."""
    mount_point = install_dir / "node_modules"
    if mount_point.is_symlink() or not mount_point.is_dir():
        return
    with contextlib.suppress(OSError):  # not empty: a private install's own, kept
        mount_point.rmdir()


def read_plain(path: Path) -> bytes | None:
    """A regular file's bytes; None when it is missing or a link (a workspace's files may
    have been written by project code: never follow a link out of it)."""
    if path.is_symlink() or not path.is_file():
        return None
    return path.read_bytes()


def write_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` into the file at ``path`` (keeping its owner for the sandbox user),
    never through a link: a link there is replaced by a regular file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    except OSError:  # a link (ELOOP), or nothing there
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
