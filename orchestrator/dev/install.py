"""A dev session's dependencies, installed exactly as a build installs them.

The shared dependency layer (made once by the egress-proxied install container, mounted
read-only) when the lockfile allows one; otherwise the private two-step install into the
session's workspace: ``npm ci/install --ignore-scripts`` on the internal network whose
only way out is the egress proxy, then scripts with no network. Project code never runs
with network here either.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.builds import plan
from orchestrator.builds.provision import LayerProvider, LayerUse, root_scripts_step
from orchestrator.cache import gc
from orchestrator.cache.layers import layer_store
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.context import Context
from orchestrator.dev.container import session_label
from orchestrator.errors import BuildError
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

    def install(self, manifest: dict[str, Any], lockfiles: dict[str, bytes]) -> LayerUse | None:
        """Make the dependencies available; returns the layer to mount, if any."""
        s = self.ctx.settings
        if not has_dependencies(manifest):
            self.note("no dependencies: nothing to install")
            return None
        if s.cache_layers:
            provider = LayerProvider(
                layers=layer_store(s),
                resolutions=ResolutionStore(s.resolutions_dir, s.resolution_ttl_s),
                toolchain=self.ctx.sandbox.toolchain(),
                registry=s.npm_registry,
                run=self._run_install,
                note=self.note,
                wait=self._check_stop,
                prepare_dir=self.ctx.sandbox.prepare_dir,
            )
            top_level = sorted(p.name for p in self.workspace.iterdir())
            self.layer = provider.provide(manifest, lockfiles, top_level)
        if self.layer is not None:
            scripts = root_install_scripts(manifest)
            if scripts:
                self._run(root_scripts_step(scripts), self.workspace)
            return self.layer
        install = plan.plan_install(manifest, lockfiles)
        for warning in install.warnings:
            self.note(f"warning: {warning}")
        self._run_install(install.step, self.workspace)
        lock = self.workspace / "package-lock.json"
        if plan.needs_lifecycle_scripts(manifest, lock.read_bytes() if lock.is_file() else None):
            self._run(plan.lifecycle_step(), self.workspace)
        return None

    def release(self) -> None:
        """Let the layer go (the session stopped or installs anew)."""
        if self.layer is not None:
            self.layer.release()
            self.layer = None

    def _check_stop(self) -> None:
        if self.stopped():
            raise SessionStopped()

    def _run_install(self, step: Step, folder: Path) -> None:
        while True:
            try:
                self._run(step, folder)
                return
            except BuildError as exc:
                retry = plan.install_fallback(step, "\n".join(self.output))
                if exc.code != step.failure_code or retry is None:
                    raise
                step, reason = retry
                self.note(f"warning: {reason}")

    def _run(self, step: Step, folder: Path) -> None:
        self._check_stop()
        self.note(f"$ {' '.join(step.argv)}")
        self.output.clear()
        holding = (
            gc.using_npm_cache(self.ctx.settings) if step.network else contextlib.nullcontext()
        )
        on_layer = self.layer is not None and folder == self.workspace
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
            raise BuildError(message, code=code, exit_code=result.exit_code)
        self.note(f"{step.name} finished in {result.seconds:.1f} s")

    def _output(self, stream: str, lines: list[str]) -> None:
        self.output.extend(lines)
        self.on_output(stream, lines)
