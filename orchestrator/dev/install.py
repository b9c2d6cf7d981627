"""A dev session's dependencies, installed exactly as a build installs them.

The session's environment is chosen as a build of its current files would choose it
(``project/environment.py``: the start's ``node``, ``.nvmrc``, ``.node-version``,
``engines.node``; ``packageManager``, then the lockfile), and the install runs the build's
own sequence (``builds/environment_steps.py``): the shared dependency layer of npm, pnpm,
yarn or bun (made once by the egress-proxied install container, mounted read-only) when
the lockfile allows one; otherwise the manager's private install into the session's
workspace, frozen with scripts off on the internal network whose only way out is the
egress proxy, then the dependencies' scripts with no network by the manager's own rules.
Project code never runs with network here either. Every step, and the dev server's own
container, runs with the chosen Node and manager (``equip``). An app in a subfolder
installs in its install folder (``AppLayout.install``: a workspace member at its
workspace root, which, as for builds, installs privately).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.builds import environment_steps, install, managers, plan
from orchestrator.builds.app_folders import ProjectFolders
from orchestrator.builds.environment_install import ChosenManager
from orchestrator.builds.provision import LayerUse, root_scripts_step
from orchestrator.cache import gc
from orchestrator.context import Context
from orchestrator.dev.container import session_label
from orchestrator.errors import BuildError, ErrorCode, UnsupportedEnvironment
from orchestrator.project.app_folder import AppLayout
from orchestrator.project.environment import Environment, Manager, choose_environment
from orchestrator.project.npm import has_dependencies, root_install_scripts
from orchestrator.sandbox.step import Limits, Step

LineSink = Callable[[str, list[str]], None]
OUTPUT_LINES = 2000


class SessionStopped(Exception):
    """Raised inside an install when the session was asked to stop."""


class SessionInstaller:
    """Installs one session's dependencies into its workspace (or finds their layer)."""

    def __init__(
        self,
        ctx: Context,
        project: str,
        *,
        workspace: Path,
        limits: Limits,
        on_output: LineSink,
        note: Callable[[str], None],
        stopped: Callable[[], bool],
    ) -> None:
        self.ctx = ctx
        self.label = session_label(project)
        self.workspace = workspace
        self.limits = limits
        self.on_output = on_output
        self.note = note
        self.stopped = stopped
        self.layer: LayerUse | None = None
        self.output: deque[str] = deque(maxlen=OUTPUT_LINES)
        self.manager: install.PackageManager = install.NPM
        self.environment: Environment | None = None
        self.folders = ProjectFolders(workspace)

    def choose(
        self, manifest: Mapping[str, Any], files: Mapping[str, bytes], requested_node: object
    ) -> Environment:
        """The session's Node and manager from its files, said as a build says them.

        ``files``: the project's top-level environment files (``ENVIRONMENT_FILES`` and
        ``pnpm-workspace.yaml``), from the API's copy of the session's files."""
        try:
            chosen = choose_environment(self.ctx.sandbox.offer(), manifest, files, requested_node)
        except UnsupportedEnvironment as exc:  # the image changed since the start
            raise BuildError(exc.message, code=ErrorCode(exc.code)) from exc
        for line in environment_steps.environment_notes(chosen):
            self.note(line)
        workspace_yaml = files.get(environment_steps.PNPM_WORKSPACE)
        self.environment = chosen
        self.manager = environment_steps.chosen_manager(
            chosen, self.ctx.settings, workspace_yaml, self.ctx.sandbox
        )
        return chosen

    def equip(self, step: Step) -> Step:
        """``step`` with the session's Node and manager (the dev server's, too)."""
        return self.manager.equip(step)

    def install(
        self,
        manifest: dict[str, Any],
        files: Mapping[str, bytes],
        layout: AppLayout | None = None,
    ) -> LayerUse | None:
        """Make the dependencies available; returns the layer to mount, if any.

        ``manifest`` and ``files``: the install folder's package.json and environment
        files; ``layout``: where the app is and installs (the top without one)."""
        s = self.ctx.settings
        self.folders = ProjectFolders(self.workspace, layout or AppLayout())
        in_workspace = self.folders.layout.in_workspace
        if not has_dependencies(manifest) and not in_workspace:  # a root may list none
            self.note("no dependencies: nothing to install")
            return None
        hooks = self._hooks()
        if isinstance(self.manager, ChosenManager):
            self.manager = environment_steps.fetch_manager(
                self.manager, self.ctx.sandbox.offer(), s, self.label, hooks
            )
        lockfiles = {name: files[name] for name in self.manager.lockfiles if name in files}
        install_dir = self.folders.install
        if s.cache_layers and in_workspace:  # its node_modules links to the members' folders
            self.note("dependency layer: not shared for a workspace; installing privately")
        elif s.cache_layers:
            provider = environment_steps.layer_provider(
                s, self.ctx.sandbox.toolchain(), self.environment, hooks, wait=self._check_stop
            )
            self.layer = environment_steps.provide_layer(
                provider,
                hooks,
                self.environment,
                environment_steps.LayerInputs(
                    manifest,
                    lockfiles,
                    sorted(p.name for p in install_dir.iterdir()),
                    workspace_yaml=files.get(environment_steps.PNPM_WORKSPACE),
                    bun_defaults=(
                        self.manager.bun_defaults
                        if isinstance(self.manager, ChosenManager)
                        else frozenset()
                    ),
                ),
                step_output=lambda: "\n".join(self.output),
            )
        if self.layer is not None:
            scripts = root_install_scripts(manifest)
            if scripts:
                self._run(self._root_scripts(scripts), install_dir)
            return self.layer
        environment_steps.install_privately(
            self.manager,
            manifest,
            lockfiles,
            workspace=install_dir,
            registry=s.npm_registry,
            hooks=hooks,
        )
        return None

    def _root_scripts(self, scripts: list[str]) -> Step:
        """The project's own install scripts (offline, on its layer), run by its manager."""
        env = self.environment
        if env is None or env.manager.manager == Manager.NPM:
            return root_scripts_step(scripts)
        return managers.root_scripts_step(env, scripts)

    def _hooks(self) -> environment_steps.StepHooks:
        return environment_steps.StepHooks(
            run=self._run,
            run_install=self._run_install,
            note=self.note,
            prepare_dir=self.ctx.sandbox.prepare_dir,
        )

    def release(self) -> None:
        """Let the layer go (the session stopped or installs anew)."""
        if self.layer is not None:
            self.layer.release()
            self.layer = None
            with contextlib.suppress(BuildError):  # the app folder became a link: leave it
                environment_steps.drop_mount_point(self.folders.install)

    def _check_stop(self) -> None:
        if self.stopped():
            raise SessionStopped()

    def _run_install(self, step: Step, folder: Path) -> None:
        while True:
            try:
                self._run(step, folder)
                return
            except BuildError as exc:
                retry = install.retry_install(step, exc.code, list(self.output), self.manager)
                if retry is None:
                    raise
                step = retry.step
                self.note(retry.warning)

    def _run(self, step: Step, folder: Path) -> None:
        """Run ``step`` in ``folder``: the install folder's steps run in the session's
        workspace at that folder (``workdir``), the layer mounted there; others (a layer's
        staging, a fetched manager's) in their own folder."""
        self._check_stop()
        on_layer = self.layer is not None and folder == self.folders.install
        if folder == self.folders.install:
            step = replace(step, workdir=self.folders.layout.install)
            folder = self.workspace
        step = self.manager.equip(step)
        self.note(f"$ {' '.join(step.argv)}")
        self.output.clear()
        holding = (
            gc.using_npm_cache(self.ctx.settings) if step.network else contextlib.nullcontext()
        )
        with holding:
            result = self.ctx.sandbox.run_step(
                step,
                build_id=self.label,
                limits=self.limits,
                workspace=folder,
                on_output=self._output,
                should_cancel=self.stopped,
                max_output_bytes=self.ctx.settings.max_log_mb * 1024 * 1024,
                node_modules=self.layer.node_modules if on_layer and self.layer else None,
            )
        if result.cancelled:
            raise SessionStopped()
        if not result.ok:
            code, message = plan.classify_failure(
                step,
                result.exit_code,
                oom_killed=result.oom_killed,
                timed_out=result.timed_out,
                limits=self.limits,
            )
            error = BuildError(message, code=code, exit_code=result.exit_code)
            raise self.manager.explain(step, error)
        self.note(f"{step.name} finished in {result.seconds:.1f} s")

    def _output(self, stream: str, lines: list[str]) -> None:
        self.output.extend(lines)
        self.on_output(stream, lines)
