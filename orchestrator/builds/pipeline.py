"""A build's run in the worker, top to bottom: claim, its rounds, finish.

``BuildRun`` takes what runs in its rounds: a submitted build is ``OneRound`` (prepare,
install, build, publish once); a generated one is ``generation.GenerationRounds``
(generate → build → fix). Every path ends in ``lifecycle.finish``, which records the end
state and sends the one ``end`` event, so no build is left ``running``. Steps run through
a ``StepRunner`` (Docker, or the fake in unit tests); which install runs is decided in
``install``. ``run_build`` is the RQ job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tarfile
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from rq import Retry
from rq.suspension import is_suspended

from orchestrator.builds import environment_steps, install, lifecycle, managers, output_folder, plan
from orchestrator.builds.app_folders import Manifests, ProjectFolders
from orchestrator.builds.environment_install import ChosenManager
from orchestrator.builds.environment_io import read_environment
from orchestrator.builds.install import CacheInfo, Manifest, Route
from orchestrator.builds.outcome import SUCCEEDED, Cancelled, Outcome, outcome_of
from orchestrator.builds.provision import LayerProvider, LayerUse
from orchestrator.cache import gc
from orchestrator.context import Context
from orchestrator.errors import (
    BuildError,
    ErrorCode,
    KilnError,
    SandboxError,
    UnsupportedEnvironment,
)
from orchestrator.live.logbus import clean_line
from orchestrator.logs import build_context
from orchestrator.project import frameworks
from orchestrator.project.environment import Environment, Manager
from orchestrator.records.counters import observe
from orchestrator.records.models import Build, Phase, Status, aware
from orchestrator.sandbox import workspace
from orchestrator.sandbox.protocol import StepResult, StepRunner
from orchestrator.sandbox.step import Limits, Step
from orchestrator.settings import get_settings
from orchestrator.storage import artifacts
from orchestrator.storage.artifacts import OutputLimits
from orchestrator.storage.disk import free_disk_mb
from orchestrator.storage.layout import DIST
from orchestrator.storage.manifest import INDEX

log = logging.getLogger("kiln.pipeline")
STEP_OUTPUT_LINES = 2000  # enough of one step's output to recognise npm's error codes
CAP_WAIT_S = 1.0  # pause before a build held back by its project's cap goes back in line
CAP_RETRIES = 10_000  # RQ re-queues at most this often; then the reconciler re-enqueues


class Rounds(Protocol):
    """What runs between a build's claim and its end; never raises but ``RedisError``."""

    first_phase: Phase  # the phase a claimed build is announced in

    def __call__(self, run: BuildRun) -> Outcome:
        """Run the rounds on ``run``; how the build ended."""
        ...


class OneRound:
    """A submitted build: prepare, install, build and publish once."""

    first_phase = Phase.PREPARING

    def __call__(self, run: BuildRun) -> Outcome:
        """One attempt is the whole build."""
        return run.attempt()


class BuildRun:
    """One run of one build, with everything it needs at hand."""

    def __init__(self, build_id: str, ctx: Context, rounds: Rounds | None = None) -> None:
        self.id = build_id
        self.ctx = ctx
        self.rounds: Rounds = rounds or OneRound()
        self.settings = ctx.settings
        self.bus = ctx.bus
        self.workspace = self.settings.work_dir / build_id
        self.tail: deque[str] = deque(maxlen=self.settings.log_tail_lines)
        self.step_output: deque[str] = deque(maxlen=STEP_OUTPUT_LINES)  # the last step's
        self.phase = Phase.QUEUED
        self.limits = Limits(self.settings.timeout_s, self.settings.memory_mb, self.settings.cpus)
        self.env: dict[str, str] = {}  # the submit's build settings, for the build step only
        self.attempt_no = 0
        self.log_budget = self.settings.max_log_mb * 1024 * 1024
        self.layer: LayerUse | None = None
        self.cache: CacheInfo = {}
        self.manager: install.PackageManager = install.NPM
        self.environment: Environment | None = None  # chosen in _prepare
        self.folders = ProjectFolders(self.workspace)  # where the app is (read in _prepare)

    @property
    def runner(self) -> StepRunner:
        """What runs this build's steps."""
        return self.ctx.sandbox

    # -- the life of a build -------------------------------------------------------------

    def run(self) -> Retry | None:
        """Run the build to one of its three ends (a ``Retry`` when its project is at its cap)."""
        from orchestrator.builds.jobs import worker_name

        if is_suspended(self.ctx.redis):  # `kiln drain`: back in line, take nothing new
            return Retry(max=CAP_RETRIES)
        cap = self.settings.project_concurrency
        name = worker_name(self.settings.instance, os.getppid())
        build = lifecycle.claim(self.ctx, self.id, worker=name, project_cap=cap)
        if build is None:
            current = self.ctx.store.get(self.id)
            if current.status == Status.QUEUED.value and not current.cancel_requested:
                time.sleep(CAP_WAIT_S)  # its project runs `cap` builds: back in line
                return Retry(max=CAP_RETRIES)
            return None  # cancelled while queued, or already handled
        self.attempt_no = build.attempts
        log.info(
            "build %s started (attempt %s, project %s)", self.id, build.attempts, build.project
        )
        if build.started_at is not None:
            wait = (aware(build.started_at) - aware(build.created_at)).total_seconds()
            observe(self.ctx.redis, self.settings.instance, "queue_wait_seconds", wait)
        heartbeat = _Heartbeat(self.ctx, self.id, self.attempt_no, self.settings.build_lease_s)
        heartbeat.start()
        try:
            self._run_claimed(build)
        finally:
            heartbeat.stop()
        return None

    def _run_claimed(self, build: Build) -> None:
        self.limits = Limits(**build.limits) if build.limits else self.limits
        self.env = dict(build.env or {})
        self.phase = Phase.PREPARING  # claim() recorded it
        if self.rounds.first_phase != self.phase:
            self.enter(self.rounds.first_phase)
        else:
            lifecycle.announce_running(self.ctx, self.id, self.phase)
        try:
            outcome = self.rounds(self)
            lifecycle.finish(
                self.ctx,
                self.id,
                outcome,
                attempt=self.attempt_no,
                phase=self.phase,
                log_tail="\n".join(self.tail),
                cache=dict(self.cache),
            )
        finally:
            self._cleanup()

    def attempt(self) -> Outcome:
        """Prepare, install, build and publish once; how that went (the build is not ended).

        A generation calls this once per round on the same build.
        """
        self.step_output.clear()
        try:
            manifests = self._prepare()
            self._install(manifests.install)
            self._build(manifests)
            self._publish(manifests.app)
        except Exception as exc:
            return outcome_of(
                exc,
                step_output="\n".join(self.step_output),
                internal_code=SandboxError.code,
                build_id=self.id,
            )
        return SUCCEEDED

    def _prepare(self) -> Manifests:
        free_mb = free_disk_mb(self.settings.var_dir)
        if free_mb < self.settings.min_free_disk_mb:
            raise BuildError(
                f"the build server's disk is nearly full ({free_mb:.0f} MB free)",
                code=ErrorCode.DISK_FULL,
            )
        self._fill_workspace()
        self.folders = ProjectFolders.read(self.workspace, self.ctx.store.get(self.id).root)
        manifests = self.folders.manifests()
        where = self.folders.describe()
        if where:
            self.note(where)
        self._choose_environment(manifests.install)
        return manifests

    def _fill_workspace(self) -> None:
        """The workspace made anew from the submitted files."""
        workspace.create(self.workspace, self.settings.workspace_mb)
        with (
            self.ctx.storage.open_source(self.id) as source,
            tarfile.open(fileobj=source) as archive,  # written by the API from a checked file map
        ):
            archive.extractall(self.workspace, filter="data")
        self.runner.prepare_dir(self.workspace)

    def _choose_environment(self, manifest: Manifest) -> None:
        """Node and package manager for this build: recorded, said, and its install strategy."""
        requested = (self.ctx.store.get(self.id).environment or {}).get("requested_node")
        try:
            offer = self.runner.offer()
            chosen = read_environment(self.folders.install, offer, manifest, requested)
        except UnsupportedEnvironment as exc:  # the image changed since the submit
            raise BuildError(exc.message, code=ErrorCode(exc.code)) from exc
        self.ctx.store.set_environment(self.id, {"requested_node": requested, **chosen.public()})
        for line in environment_steps.environment_notes(chosen):
            self.note(line)
        self.environment = chosen
        workspace_yaml = environment_steps.read_plain(
            self.folders.install / environment_steps.PNPM_WORKSPACE
        )
        self.manager = environment_steps.chosen_manager(
            chosen, self.settings, workspace_yaml, self.runner
        )

    def _lockfiles(self) -> dict[str, bytes]:
        folder = self.folders.install
        return {
            name: (folder / name).read_bytes()
            for name in self.manager.lockfiles
            if (folder / name).is_file() and not (folder / name).is_symlink()
        }

    # -- install -------------------------------------------------------------------------

    def _install(self, manifest: Manifest) -> None:
        self.enter(Phase.INSTALLING)
        self._release_layer()  # a generator's earlier round may hold one
        self.cache = {}
        self._fetch_manager()
        facts = install.InstallFacts.of(manifest)
        if self.folders.layout.in_workspace:  # a workspace root's own package.json may list none
            facts = replace(facts, has_dependencies=True)
        lockfiles = self._lockfiles()
        scripts = self._own_scripts(facts)
        route = install.route(facts, cache_layers=self.settings.cache_layers)
        if route is Route.NONE:
            self.cache["layer"] = Route.NONE.value
            self.note("no dependencies: nothing to install")
            if scripts is not None:
                self._run(scripts)
            return
        if route is Route.LAYER and self._use_layer(manifest, lockfiles):
            if scripts is None:
                return
            try:  # the project's own scripts: its container, the layer read-only, offline
                self._run(scripts)
                return
            except BuildError as exc:
                if not self._leave_layer(exc):
                    raise
            self._reinstall(manifest)  # the project's own scripts ran in the workspace
            return
        self._install_privately(manifest, lockfiles)

    def _own_scripts(self, facts: install.InstallFacts) -> Step | None:
        """The project's own install scripts (offline, its workspace), run by its manager."""
        env = self.environment
        if env is None or env.manager.manager == Manager.NPM or not facts.root_scripts:
            return install.root_scripts(facts)
        return managers.root_scripts_step(env, list(facts.root_scripts))

    def _fetch_manager(self) -> None:
        """packageManager's exact version when the image lacks it (``environment_steps``)."""
        if isinstance(self.manager, ChosenManager):
            self.manager = environment_steps.fetch_manager(
                self.manager, self.runner.offer(), self.settings, self.id, self._hooks()
            )

    def _hooks(self) -> environment_steps.StepHooks:
        return environment_steps.StepHooks(
            run=lambda step, folder: self._run(step, self._own(folder)),
            run_install=lambda step, folder: self._run_install(step, self._own(folder)),
            note=self.note,
            prepare_dir=self.runner.prepare_dir,
        )

    def _own(self, folder: Path) -> Path | None:
        """The build's own workspace (or its install folder in it) as ``None``: a step there
        runs in its app's or install folder (``_run``) and keeps the build's layer mounted."""
        return None if folder in (self.workspace, self.folders.install) else folder

    def _use_layer(self, manifest: Manifest, lockfiles: dict[str, bytes]) -> bool:
        """Mount a shared dependency layer (made now if missing); False to install privately."""
        if self.folders.layout.in_workspace:  # its node_modules links to the members' folders
            self.note("dependency layer: not shared for a workspace; installing privately")
            self.cache["layer"] = Route.PRIVATE.value
            return False
        top_level = sorted(p.name for p in self.folders.install.iterdir())
        self.layer = environment_steps.provide_layer(
            self._layer_provider(),
            self._hooks(),
            self.environment,
            environment_steps.LayerInputs(
                manifest,
                lockfiles,
                top_level,
                workspace_yaml=environment_steps.read_plain(
                    self.folders.install / environment_steps.PNPM_WORKSPACE
                ),
                bun_defaults=(
                    self.manager.bun_defaults
                    if isinstance(self.manager, ChosenManager)
                    else frozenset()
                ),
            ),
            step_output=lambda: "\n".join(self.step_output),
        )
        if self.layer is None:
            self.cache["layer"] = Route.PRIVATE.value
            return False
        self.cache["layer"], self.cache["layer_key"] = self.layer.outcome, self.layer.key
        if self.layer.resolution:
            self.cache["resolution"] = self.layer.resolution
        return True

    def _layer_provider(self) -> LayerProvider:
        return environment_steps.layer_provider(
            self.settings,
            self.runner.toolchain(),
            self.environment,
            self._hooks(),
            wait=self.check_cancel,
        )

    def _leave_layer(self, exc: BuildError) -> bool:
        """After a failed step on a layer: was it a write into it? Then drop the layer."""
        on_layer = self.layer is not None
        if not install.leave_layer(exc.code, list(self.step_output), on_layer=on_layer):
            return False
        self.note(install.LAYER_WRITE_WARNING)
        self._release_layer()
        self.cache["layer"] = Route.PRIVATE.value
        environment_steps.drop_mount_point(self.folders.install)
        return True

    def _reinstall(self, manifest: Manifest) -> None:
        """A private install after project code ran in the workspace (and wrote into the
        layer): in a workspace made anew from the submitted files, since the install has
        network and reads the workspace, which that code could have rewritten (a
        package.json with yarn's exec: protocol, a planted .npmrc or workspace member)."""
        self._fill_workspace()
        self._install_privately(manifest, self._lockfiles())

    def _release_layer(self) -> None:
        if self.layer is not None:
            self.layer.release()
            self.layer = None

    def _install_privately(self, manifest: Manifest, lockfiles: dict[str, bytes]) -> None:
        environment_steps.install_privately(
            self.manager,
            manifest,
            lockfiles,
            workspace=self.folders.install,
            registry=self.settings.npm_registry,
            hooks=self._hooks(),
        )

    def _run_install(self, step: Step, folder: Path | None) -> None:
        """Run an install step in ``folder`` (None: the build's install folder), with the
        retries its own error suggests."""
        while True:
            try:
                self._run(step, folder)
                return
            except BuildError as exc:
                retry = install.retry_install(step, exc.code, list(self.step_output), self.manager)
                if retry is None:
                    raise
                step = retry.step
                self.note(retry.warning)

    # -- build and publish ---------------------------------------------------------------

    def _build(self, manifests: Manifests) -> None:
        # Every manager builds a workspace member run from the member's own folder after the
        # install at the workspace root: `npm run` puts each enclosing node_modules/.bin on
        # PATH (and npm finds the workspace root above), `pnpm run` and `yarn run` (1 and 2+)
        # run that member's script with its own and the root's bins, and `bun run` walks up
        # to node_modules/.bin as well. So one build step serves a member and a plain app.
        step = self.manager.build_step(manifests.app, self.env)
        if self.env:  # by name only: the values may be secrets
            self.note(f"build settings (env): {', '.join(self.env)}")
        try:
            self._run(step)
        except BuildError as exc:
            if not self._leave_layer(exc):
                raise
            self._reinstall(manifests.install)
            self._run(step)

    def _run(
        self, step: Step, folder: Path | None = None, limits: Limits | None = None
    ) -> StepResult:
        """Run one step in the build's workspace (or in ``folder``, e.g. a layer's staging),
        under the build's limits (or ``limits``): an install step where its dependencies
        install, the others (build, output probe) in the app's folder."""
        limits = limits or self.limits
        self.check_cancel()
        if folder is None:
            layout = self.folders.layout
            where = layout.install if step.phase is Phase.INSTALLING else layout.app
            step = replace(step, workdir=where)
        self.enter(step.phase)
        step = self.manager.equip(step)  # the chosen Node and manager (PATH, settings)
        self.note(f"$ {' '.join(step.argv)}")
        self.step_output.clear()
        # Install steps hold the npm cache so that eviction does not trim it under them.
        holding = gc.using_npm_cache(self.settings) if step.network else contextlib.nullcontext()
        with holding:
            result = self.runner.run_step(
                step,
                build_id=self.id,
                limits=limits,
                workspace=folder or self.workspace,
                on_output=self._output,
                should_cancel=lambda: self.ctx.cancel_requested(self.id),
                max_output_bytes=self.log_budget,
                node_modules=self.layer.node_modules if self.layer and folder is None else None,
            )
        observe(
            self.ctx.redis,
            self.settings.instance,
            "step_duration_seconds",
            result.seconds,
            step=step.name,
        )
        self.log_budget -= result.output_bytes
        if result.cancelled:
            raise Cancelled()
        bounds = plan.StepBounds(limits, self.settings.max_log_mb, self.settings.workspace_mb)
        full = not result.ok and workspace.is_full(self.workspace)
        error = plan.step_error(step, result, self.step_output, bounds=bounds, disk_full=full)
        if error is not None:
            raise self.manager.explain(step, error)
        self.note(f"{step.name} finished in {result.seconds:.1f} s")
        return result

    def _publish(self, manifest: Manifest) -> None:
        self.check_cancel()
        self.enter(Phase.PUBLISHING)
        limits = OutputLimits(
            max_bytes=self.settings.max_dist_mb * 1024 * 1024,
            max_files=self.settings.max_dist_files,
        )
        folder = self._output_folder(manifest)
        self._record_output_dir(folder)
        app = self.folders.app
        files, size = self.ctx.storage.publish(app / folder, self.id, limits, folder)
        self.note(f"published {files} files ({size / 1024:.0f} KiB) from {folder}/")

    def _output_folder(self, manifest: Manifest) -> str:
        """dist/ when it has an index.html (the fast path); else the first of build.outDir
        and the detected framework's static folder that has one."""
        app = self.folders.app
        if (app / DIST / INDEX).is_file():
            return DIST
        out_dir = self._probe_out_dir()
        top_level = [p.name for p in app.iterdir()]
        framework = frameworks.detect(manifest, top_level)
        looked = output_folder.candidates(out_dir, framework)
        for candidate in looked:
            path = artifacts.output_folder(app, candidate.folder)
            if path is not None and (path / INDEX).is_file():
                self.note(f"no dist/index.html; publishing {candidate.folder}/ ({candidate.why})")
                return candidate.folder
        raise BuildError(
            output_folder.missing_output_message(looked, framework), code=ErrorCode.BUILD_FAILED
        )

    def _probe_out_dir(self) -> str | None:
        """The project's resolved build.outDir, relative to the workspace; None when it has
        no Vite or the probe failed (then only the other folders are tried)."""
        step = output_folder.probe_step()
        try:
            self._run(step, limits=output_folder.probe_limits(self.limits))
        except BuildError as exc:
            self.note(f"warning: {exc.message}; looking in the usual folders only")
            return None
        reported = output_folder.reported_out_dir(self.step_output)
        return None if reported is None else output_folder.inside_workspace(reported)

    def _record_output_dir(self, folder: str) -> None:
        """The published folder in the build's body when it is not dist/ (a generation's
        later round may publish dist/ again)."""
        environment = dict(self.ctx.store.get(self.id).environment or {})
        wanted = None if folder == DIST else folder
        if environment.get("output_dir") != wanted:
            environment["output_dir"] = wanted
            self.ctx.store.set_environment(self.id, environment)

    def _cleanup(self) -> None:
        self._release_layer()
        try:
            self.runner.remove_build_containers(self.id)
        except Exception:
            log.exception("could not sweep containers of build %s", self.id)
        try:
            workspace.remove(self.workspace)
        except Exception:
            log.exception("could not remove the workspace of build %s", self.id)
        # The source stays for `kiln retry` until `kiln gc` removes it with the artifacts.
        if self.cache.get("layer") == "miss":  # the cache grew: keep it within its budget
            try:
                gc.enforce_budgets(self.settings)
            except Exception:
                log.exception("cache eviction after build %s failed", self.id)

    # -- what rounds use -----------------------------------------------------------------

    def enter(self, phase: Phase) -> None:
        """Move the running build to ``phase`` (recorded and announced once)."""
        if phase == self.phase:
            return
        self.phase = phase
        lifecycle.enter_phase(self.ctx, self.id, phase)

    def note(self, text: str) -> None:
        """A ``[kiln]`` line in the build's log, in its current phase."""
        self.bus.note(self.id, self.phase, text)

    def check_cancel(self) -> None:
        """Raise ``Cancelled`` once someone asked to cancel the build."""
        if self.ctx.cancel_requested(self.id):
            raise Cancelled()

    def _output(self, stream: str, lines: list[str]) -> None:
        # Cleaned once, here: the log tail, the diagnostics and the failed-preview page all
        # come from these lines, as the event stream does.
        lines = [clean_line(line) for line in lines]
        self.tail.extend(lines)
        self.step_output.extend(lines)
        self.bus.logs(self.id, self.phase.value, stream, lines)


class _Heartbeat(threading.Thread):
    """Marks the build alive in the database while this work-horse runs it."""

    def __init__(self, ctx: Context, build_id: str, attempt: int, lease_s: int) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{build_id}")
        self.ctx, self.build_id, self.attempt = ctx, build_id, attempt
        self.interval = max(1.0, lease_s / 5)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.ctx.store.heartbeat(self.build_id, self.attempt)
            except Exception:
                log.exception("heartbeat of build %s failed", self.build_id)

    def stop(self) -> None:
        self.stopped.set()


def run_build(build_id: str) -> Retry | None:
    """The RQ job: run one build in this worker process."""
    try:
        with build_context(build_id):
            return BuildRun(build_id, Context(get_settings())).run()
    except KilnError:
        log.exception("build %s could not run", build_id)
        raise
