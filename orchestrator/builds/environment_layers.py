"""Whether a pnpm, yarn or bun build gets a shared dependency layer, and its recipe (pure).

npm's layers are decided in ``provision.LayerProvider.provide``; the other managers'
here: a frozen install of the manager's own lockfile, in a staging folder that holds only
that lockfile and a package.json made of the project's dependency fields
(``manager_layers.layer_manifest``), with scripts off and the egress proxy as the way out;
then the dependencies' allowed install scripts (``managers.scripts_step``: pnpm's
``onlyBuiltDependencies``; bun's ``trustedDependencies``, else its default list as far as
the lockfile installs it; never widened), offline. The scripts step is part of the key.

Each manager writes a ``node_modules`` that lives entirely inside itself, so it works as
a read-only mount at ``/workspace/node_modules``: pnpm's default isolated linker keeps its
virtual store in ``node_modules/.pnpm`` with relative symlinks; yarn 2+ runs with
``nodeLinker: node-modules`` (``managers.step_env``); yarn 1 and bun hoist plain folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.builds import managers
from orchestrator.builds.provision import LayerRecipe
from orchestrator.cache import manager_layers
from orchestrator.errors import ErrorCode
from orchestrator.project.environment import Environment, Manager
from orchestrator.records.models import Phase
from orchestrator.sandbox.step import Step


def layer_recipe(
    env: Environment,
    manifest: Mapping[str, Any],
    lockfiles: Mapping[str, bytes],
    project_files: Sequence[str],
    *,
    workspace_yaml: bytes | None,
    registry: str,
    bun_defaults: frozenset[str] = frozenset(),
) -> LayerRecipe | str:
    """The recipe of this build's layer, or why it installs privately instead.

    ``bun_defaults``: the image's bun's default trusted list (``managers.bun_trusted``)."""
    manager = env.manager.manager
    if manager == Manager.NPM:
        raise ValueError("npm's layers are made by LayerProvider.provide")
    lockfile = env.manager.lockfile
    if lockfile is None or lockfile not in lockfiles:
        return f"the project has no lockfile for {manager.command}"
    if not env.frozen:
        return f"{lockfile} does not match package.json"
    refusal = manager_layers.project_refusal(manager, manifest, project_files, workspace_yaml)
    raw = lockfiles[lockfile]
    refusal = refusal or manager_layers.lockfile_refusal(manager, lockfile, raw)
    if refusal:
        return refusal
    made = manager_layers.layer_manifest(manager, manifest, workspace_yaml)
    # yarn 1 lockfiles name yarn's alias of npm's registry: resolve through Kiln's
    staged = raw
    if manager == Manager.YARN_CLASSIC:
        staged = managers.yarn_lock_for_registry(raw, registry)
    install = Step(
        "layer-install",
        Phase.INSTALLING,
        managers.install_argv(env),
        network=True,
        failure_code=ErrorCode.INSTALL_FAILED,
    )
    return LayerRecipe(
        lockfile=lockfile,
        lock_bytes=raw,
        staged_lock=staged,
        manifest=made,
        install=install,
        scripts=managers.scripts_step(env, made, raw, bun_defaults=bun_defaults),
        settings=managers.layer_settings(env),
    )


def refused_lockfile(env: Environment, step: Step, output: str) -> bool:
    """True when a layer's frozen install failed because the manager found the lockfile out
    of date: the build then installs privately (a layer is never made from a re-resolution)."""
    return managers.install_fallback(env, step, output) is not None
