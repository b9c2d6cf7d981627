"""A build's life in the worker, top to bottom: prepare, install, build, publish, finish.

``run_build`` is the RQ job. Every path ends in ``_finish``, which records the end state,
emits the ``end`` event and archives the log, so no build is left ``running``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tarfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple

import redis
from rq import Retry
from rq.suspension import is_suspended

from orchestrator import plan, workspace
from orchestrator.admission import free_disk_mb
from orchestrator.artifacts import DIST, OutputLimits, publish
from orchestrator.build import managers
from orchestrator.build.environment_io import (
    environment_toolchain,
    npm_layers_fit,
    read_environment,
)
from orchestrator.cache import gc
from orchestrator.cache.keys import has_dependencies, root_install_scripts
from orchestrator.cache.layers import image_toolchain, layer_store
from orchestrator.cache.provision import LayerProvider, LayerUse, root_scripts_step
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.codegen.diagnostics import diagnose
from orchestrator.context import Context
from orchestrator.errors import BuildError, KilnError, SandboxError, UnsupportedEnvironment
from orchestrator.logs import build_context
from orchestrator.metrics import incr, observe
from orchestrator.models import Build, aware, public_view
from orchestrator.plan import Limits, Phase, Status, Step
from orchestrator.project.environment import Environment, Manager, Offer
from orchestrator.project_input import parse_package_json
from orchestrator.sandbox import StepResult, hand_over
from orchestrator.sandbox_image.toolchains import image_offer
from orchestrator.settings import get_settings

log = logging.getLogger("kiln.pipeline")
STEP_OUTPUT_LINES = 2000  # enough of one step's output to recognise npm's error codes
CAP_WAIT_S = 1.0  # pause before a build held back by its project's cap goes back in line
CAP_RETRIES = 10_000  # RQ re-queues at most this often; then the reconciler re-enqueues
SOURCE_ARCHIVE = "source.tar"
READ_ONLY_MARKERS = ("EROFS", "read-only file system")


class Cancelled(Exception):
    """Raised inside the pipeline when the build's cancel flag is seen."""


class Outcome(NamedTuple):
    """How one attempt at a build ended."""

    status: Status
    code: str | None = None
    message: str | None = None


class BuildRun:
    """One attempt at one build, with everything it needs at hand."""

    first_phase = Phase.PREPARING  # the phase a claimed build is announced in

    def __init__(self, build_id: str, ctx: Context) -> None:
        self.id = build_id
        self.ctx = ctx
        self.settings = ctx.settings
        self.bus = ctx.bus
        self.workspace = self.settings.work_dir / build_id
        self.tail: deque[str] = deque(maxlen=self.settings.log_tail_lines)
        self.step_output: deque[str] = deque(maxlen=STEP_OUTPUT_LINES)
        self.phase = Phase.QUEUED
        self.limits = Limits(self.settings.timeout_s, self.settings.memory_mb, self.settings.cpus)
        self.attempt = 0
        self.log_budget = self.settings.max_log_mb * 1024 * 1024
        self.layer: LayerUse | None = None
        self.cache: dict[str, Any] = {}
        self.environment: Environment | None = None
        self.tools: Path | None = None  # a fetched package manager (packageManager's version)

    # -- the life of a build -------------------------------------------------------------

    def run(self) -> Retry | None:
        """Run the build to one of its three ends (a ``Retry`` when its project is at its cap)."""
        from orchestrator.worker import worker_name

        if is_suspended(self.ctx.redis):  # `kiln drain`: back in line, take nothing new
            return Retry(max=CAP_RETRIES)
        cap = self.settings.project_concurrency
        name = worker_name(self.settings.instance, os.getppid())
        build = self.ctx.store.claim(self.id, worker=name, project_cap=cap)
        if build is None:
            current = self.ctx.store.get(self.id)
            if current.status == Status.QUEUED.value and not current.cancel_requested:
                time.sleep(CAP_WAIT_S)  # its project runs `cap` builds: back in line
                return Retry(max=CAP_RETRIES)
            return None  # cancelled while queued, or already handled
        self.attempt = build.attempts
        log.info("build %s started (attempt %s, project %s)", self.id, self.attempt, build.project)
        if build.started_at is not None:
            wait = (aware(build.started_at) - aware(build.created_at)).total_seconds()
            observe(self.ctx.redis, self.settings.instance, "queue_wait_seconds", wait)
        heartbeat = _Heartbeat(self.ctx, self.id, self.attempt, self.settings.build_lease_s)
        heartbeat.start()
        try:
            self._run_claimed(build)
        finally:
            heartbeat.stop()
        return None

    def _run_claimed(self, build: Any) -> None:
        self.limits = Limits(**build.limits) if build.limits else self.limits
        self.phase = Phase.PREPARING  # claim() recorded it
        if self.first_phase != self.phase:
            self.phase = self.first_phase
            self.ctx.store.set_phase(self.id, self.phase)
        self.bus.status(self.id, Status.RUNNING.value, self.phase.value)
        try:
            self._finish(*self._outcome())
        finally:
            self._cleanup()

    def _outcome(self) -> Outcome:
        """Everything between claim and end; the code generator runs its rounds here."""
        return self.run_once()

    def run_once(self) -> Outcome:
        """Prepare, install, build and publish once; how that went (the build is not ended).

        The code generator's fix loop calls this once per round on the same build.
        """
        try:
            manifest = self._prepare()
            self._install(manifest)
            self._build(manifest)
            self._publish()
        except Cancelled:
            return Outcome(Status.CANCELLED, "cancelled", "the build was cancelled")
        except BuildError as exc:
            return Outcome(Status.FAILED, exc.code, exc.message)
        except redis.RedisError:
            # Redis went away: leave the build running; its heartbeat stops and the reconciler
            # runs it again once Redis is back (the events written so far are lost with Redis).
            log.exception("build %s lost Redis", self.id)
            raise
        except Exception as exc:  # a bug or an engine fault must still end the build
            log.exception("build %s crashed", self.id)
            return Outcome(Status.FAILED, SandboxError.code, f"internal error: {exc}")
        return Outcome(Status.SUCCEEDED)

    def _prepare(self) -> dict[str, Any]:
        free_mb = free_disk_mb(self.settings.var_dir)
        if free_mb < self.settings.min_free_disk_mb:
            raise BuildError(
                f"the build server's disk is nearly full ({free_mb:.0f} MB free)", code="disk_full"
            )
        source = self.settings.sources_dir / f"{self.id}.tar"
        workspace.create(self.workspace, self.settings.workspace_mb)
        with tarfile.open(source) as archive:  # written by the API from a checked file map
            archive.extractall(self.workspace, filter="data")
        hand_over(self.workspace, self.ctx.sandbox.options.uid)
        manifest = parse_package_json(
            {"package.json": (self.workspace / "package.json").read_bytes()}
        )
        self.environment = self._choose_environment(manifest)
        return manifest

    def _choose_environment(self, manifest: dict[str, Any]) -> Environment:
        """Node and package manager for this build (recorded, and its warnings logged)."""
        requested = (self.ctx.store.get(self.id).environment or {}).get("requested_node")
        offer = image_offer(self.ctx.docker, self.settings.sandbox_image)
        try:
            chosen = read_environment(self.workspace, offer, manifest, requested)
        except UnsupportedEnvironment as exc:  # the image changed since the submit
            raise BuildError(exc.message, code=exc.code) from exc
        self.ctx.store.set_environment(self.id, {"requested_node": requested, **chosen.public()})
        public = chosen.public()
        self.bus.note(
            self.id,
            self.phase,
            f"environment: Node {public['node']} ({chosen.node.source}), "
            f"{public['package_manager']} ({chosen.manager.source})",
        )
        for warning in chosen.warnings:
            self.bus.note(self.id, self.phase, f"warning: {warning}")
        return chosen

    def _lockfiles(self) -> dict[str, bytes]:
        return {
            name: (self.workspace / name).read_bytes()
            for name in ("package-lock.json", "npm-shrinkwrap.json", *plan.OTHER_LOCKFILES)
            if (self.workspace / name).is_file()
        }

    def _install(self, manifest: dict[str, Any]) -> None:
        self._enter(Phase.INSTALLING)
        self._release_layer()  # a generator's earlier round may hold one
        self.cache = {}
        self.tools = self._fetched_manager()
        lockfiles = self._lockfiles()
        if self.settings.cache_layers and not has_dependencies(manifest):
            self.cache["layer"] = "none"
            self.bus.note(self.id, self.phase, "no dependencies: nothing to install")
            if root_install_scripts(manifest):
                self._run(root_scripts_step(root_install_scripts(manifest)))
            return
        if self._use_layer(manifest, lockfiles):
            scripts = root_install_scripts(manifest)
            if not scripts:
                return
            try:  # the project's own scripts: its container, the layer read-only, offline
                self._run(root_scripts_step(scripts))
                return
            except BuildError as exc:
                if not self._layer_refused_write(exc):
                    raise
        self._install_privately(manifest, lockfiles)

    def _fetched_manager(self) -> Path | None:
        """packageManager's exact version when the image lacks it: fetched once per version
        into a shared folder (no project file there), then mounted read-only."""
        env = self.environment
        offer_version = None if env is None else self._offer().managers.get(env.manager.manager)
        if env is None or env.manager.version == offer_version:
            return None
        choice = env.manager
        root = self.settings.var_dir.resolve() / "cache" / "managers"
        folder = root / f"{choice.manager.value}@{choice.version}"
        if (folder / "bin").is_dir():
            self.bus.note(self.id, self.phase, f"{choice.manager.command}@{choice.version} ready")
            return folder
        self.bus.note(
            self.id,
            self.phase,
            f"fetching {choice.manager.command}@{choice.version} (packageManager) "
            "from the registry",
        )
        staging = root / f".staging-{self.id}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        hand_over(staging, self.ctx.sandbox.options.uid)
        try:
            self.tools = None
            self._run(
                managers.fetch_step(choice.manager, choice.version, choice.integrity), staging
            )
            with contextlib.suppress(OSError):  # a concurrent build may have put it first
                os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    def _offer(self) -> Offer:
        return image_offer(self.ctx.docker, self.settings.sandbox_image)

    def _use_layer(self, manifest: dict[str, Any], lockfiles: dict[str, bytes]) -> bool:
        """Mount a shared dependency layer (made now if missing); False to install privately."""
        if not self.settings.cache_layers:
            return False
        if self.environment is not None and not npm_layers_fit(self.environment):
            self.bus.note(
                self.id,
                self.phase,
                f"dependency layer: not shared for {self.environment.manager.manager.command} "
                "projects yet; installing privately",
            )
            self.cache["layer"] = "private"
            return False
        provider = LayerProvider(
            layers=layer_store(self.settings),
            resolutions=ResolutionStore(
                self.settings.resolutions_dir, self.settings.resolution_ttl_s
            ),
            toolchain=environment_toolchain(
                image_toolchain(self.ctx.docker, self.settings.sandbox_image), self.environment
            ),
            registry=self.settings.npm_registry,
            run=self._run_install,
            note=lambda text: self.bus.note(self.id, self.phase, text),
            wait=self._check_cancel,
            prepare_dir=lambda folder: hand_over(folder, self.ctx.sandbox.options.uid),
            lifecycle=managers.npm_lifecycle_step,
        )
        top_level = sorted(p.name for p in self.workspace.iterdir())
        self.layer = provider.provide(manifest, lockfiles, top_level)
        if self.layer is None:
            self.cache["layer"] = "private"
            return False
        self.cache.update(layer=self.layer.outcome, layer_key=self.layer.key)
        if self.layer.resolution:
            self.cache["resolution"] = self.layer.resolution
        return True

    def _layer_refused_write(self, exc: BuildError) -> bool:
        """After a failed step on a layer: was it a write into it? Then drop the layer."""
        if self.layer is None or exc.code not in ("build_failed", "install_failed"):
            return False
        if not any(
            "node_modules" in line and any(m.lower() in line.lower() for m in READ_ONLY_MARKERS)
            for line in self.step_output
        ):
            return False
        self.bus.note(
            self.id,
            self.phase,
            "warning: the project writes into node_modules, which is a shared read-only "
            "layer; installing its dependencies privately instead",
        )
        self._release_layer()
        self.cache["layer"] = "private"
        mount_point = self.workspace / "node_modules"
        if mount_point.is_dir() and not any(mount_point.iterdir()):
            mount_point.rmdir()  # made by Docker (as root) for the layer's mount
        return True

    def _release_layer(self) -> None:
        if self.layer is not None:
            self.layer.release()
            self.layer = None

    def _install_privately(self, manifest: dict[str, Any], lockfiles: dict[str, bytes]) -> None:
        env = self.environment
        if env is not None and env.manager.manager != Manager.NPM:
            self._install_with_manager(env, manifest)
            return
        install = plan.plan_install(manifest, lockfiles)
        for warning in install.warnings if env is None else []:  # else said with the choice
            self.bus.note(self.id, self.phase, f"warning: {warning}")
        self._run_install(install.step, self.workspace)
        lock = self.workspace / "package-lock.json"
        lock_raw = lock.read_bytes() if lock.is_file() else None
        if plan.needs_lifecycle_scripts(manifest, lock_raw):
            scripts = managers.npm_lifecycle_step(lock_raw)
            self._run(scripts)
            own = root_install_scripts(manifest)
            if own and managers.splits_optional(scripts) and env is not None:
                self._run(managers.root_scripts_step(env, own))

    def _install_with_manager(self, env: Environment, manifest: dict[str, Any]) -> None:
        """pnpm, yarn or bun: their own lockfile, scripts off; then their scripts, offline."""
        yarn_lock = self.workspace / "yarn.lock"
        if env.manager.manager == Manager.YARN_CLASSIC and yarn_lock.is_file():
            raw = yarn_lock.read_bytes()
            yarn_lock.write_bytes(managers.yarn_lock_for_registry(raw, self.settings.npm_registry))
        step = Step("install", Phase.INSTALLING, managers.install_argv(env), True, "install_failed")
        self._run_install(step, self.workspace)
        lock = self.workspace / (env.manager.lockfile or "")
        workspace_yaml = self.workspace / "pnpm-workspace.yaml"
        scripts = managers.scripts_step(
            env,
            manifest,
            lock.read_bytes() if lock.is_file() else None,
            workspace_yaml.read_bytes() if workspace_yaml.is_file() else None,
        )
        if scripts is not None:
            self._run(scripts)
        own = root_install_scripts(manifest)
        if own:
            self._run(managers.root_scripts_step(env, own))

    def _run_install(self, step: Step, folder: Path) -> None:
        """Run an install step in ``folder``, with the retry npm's own error suggests."""
        while True:
            try:
                self._run(step, folder)
                return
            except BuildError as exc:
                output = "\n".join(self.step_output)
                retry = None
                if exc.code == step.failure_code:
                    retry = plan.install_fallback(step, output)
                    if retry is None and self.environment is not None:
                        retry = managers.install_fallback(self.environment, step, output)
                if retry is None:
                    raise
                step, reason = retry
                self.bus.note(self.id, self.phase, f"warning: {reason}")

    def _build(self, manifest: dict[str, Any]) -> None:
        step = plan.build_step(manifest)
        if self.environment is not None:
            step = managers.build_step(self.environment, manifest)
        try:
            self._run(step)
        except BuildError as exc:
            if not self._layer_refused_write(exc):
                raise
            self._install_privately(manifest, self._lockfiles())
            self._run(step)

    def _run(self, step: Step, folder: Path | None = None) -> StepResult:
        """Run one step in the build's workspace (or in ``folder``, e.g. a layer's staging)."""
        self._check_cancel()
        self._enter(step.phase)
        self.bus.note(self.id, self.phase, f"$ {' '.join(step.argv)}")
        self.step_output.clear()
        # Install steps hold the npm cache so that eviction does not trim it under them.
        holding = gc.using_npm_cache(self.settings) if step.network else contextlib.nullcontext()
        with holding:
            result = self.ctx.sandbox.run_step(
                step,
                build_id=self.id,
                limits=self.limits,
                workspace=folder or self.workspace,
                on_output=self._output,
                should_cancel=lambda: self.ctx.cancel_requested(self.id),
                max_output_bytes=self.log_budget,
                node_modules=self.layer.node_modules if self.layer and folder is None else None,
                extra_env=self._step_env(step),
                tools=self.tools,
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
        if result.output_overflow:
            raise BuildError(
                f"the build wrote more than {self.settings.max_log_mb} MB of log output; "
                f"Kiln stopped reading and ended the {step.name} step",
                code="output_too_large",
            )
        if not result.ok and (
            workspace.is_full(self.workspace) or plan.mentions_disk_full(self.step_output)
        ):
            raise BuildError(
                f"the build filled its {self.settings.workspace_mb} MB workspace "
                f"during {step.name}",
                code="disk_full",
            )
        if not result.ok:
            code, message = plan.classify_failure(
                step,
                result.exit_code,
                oom_killed=result.oom_killed,
                timed_out=result.timed_out,
                limits=self.limits,
            )
            if self.environment is not None and step.argv[:1] != ["npm"]:
                # plan names npm; say which manager's install failed
                command = self.environment.manager.manager.command
                message = message.replace("npm install", f"{command} install")
                if step.name == "fetch-manager" and code == step.failure_code:
                    wanted = f"{command}@{self.environment.manager.version}"
                    message = f"fetching {wanted} (packageManager) failed with exit code "
                    message += str(result.exit_code)
            raise BuildError(message, code=code, exit_code=result.exit_code)
        self.bus.note(self.id, self.phase, f"{step.name} finished in {result.seconds:.1f} s")
        return result

    def _publish(self) -> None:
        self._check_cancel()
        self._enter(Phase.PUBLISHING)
        limits = OutputLimits(
            max_bytes=self.settings.max_dist_mb * 1024 * 1024,
            max_files=self.settings.max_dist_files,
        )
        files, size = publish(
            self.workspace / DIST, self.settings.artifacts_dir / self.id / DIST, limits
        )
        self.bus.note(self.id, self.phase, f"published {files} files ({size / 1024:.0f} KiB)")

    def _finish(self, status: Status, code: str | None = None, message: str | None = None) -> None:
        tail = "\n".join(self.tail) if code else None
        if self.cache:
            self.ctx.store.set_cache(self.id, self.cache)
            for cache in ("layer", "resolution"):
                if self.cache.get(cache) == "hit":
                    incr(self.ctx.redis, self.settings.instance, "cache_hits_total", cache=cache)
        if code:
            self.bus.note(self.id, self.phase, f"{status.value}: {message}")
        self._keep_source()
        report = None
        if status == Status.FAILED:
            report = diagnose(code, message or "", "\n".join(self.step_output))
        build = self.ctx.store.finish(
            self.id, status, code, message, tail, attempt=self.attempt, diagnostics=report
        )
        log.info(
            "build %s ended %s%s", self.id, status.value, f" ({code}: {message})" if code else ""
        )
        if build is None:
            log.warning(
                "build %s attempt %s was taken over; not recording its end", self.id, self.attempt
            )
            return
        self.bus.status(self.id, status.value, Phase.DONE.value)
        self.bus.publish(self.id, "end", self._end_body(build))
        self.bus.archive(self.id)

    def _end_body(self, build: Build) -> dict[str, Any]:
        return public_view(build, self.settings.preview_url(self.id))

    def _cleanup(self) -> None:
        self._release_layer()
        try:
            self.ctx.sandbox.remove_build_containers(self.id)
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

    def _keep_source(self) -> None:
        # A copy beside the artifacts, before the end event: a client may at once ask for a
        # generation that edits this build. The original stays for `kiln retry`.
        source = self.settings.sources_dir / f"{self.id}.tar"
        kept = self.settings.artifacts_dir / self.id / SOURCE_ARCHIVE
        if source.is_file() and not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, kept)  # same filesystem: no extra space
            except OSError:
                shutil.copyfile(source, kept)

    # -- helpers -------------------------------------------------------------------------

    def _step_env(self, step: Step) -> dict[str, str] | None:
        if self.environment is None:
            return None
        return managers.step_env(
            self.environment,
            network=step.network,
            registry=self.settings.npm_registry,
            proxy=self.ctx.sandbox.options.proxy_url,
            fetched=self.tools is not None,
        )

    def _enter(self, phase: Phase) -> None:
        if phase == self.phase:
            return
        self.phase = phase
        self.ctx.store.set_phase(self.id, phase)
        self.bus.status(self.id, Status.RUNNING.value, phase.value)

    def _output(self, stream: str, lines: list[str]) -> None:
        self.tail.extend(lines)
        self.step_output.extend(lines)
        self.bus.logs(self.id, self.phase.value, stream, lines)

    def _check_cancel(self) -> None:
        if self.ctx.cancel_requested(self.id):
            raise Cancelled()


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
