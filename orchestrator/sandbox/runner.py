"""Running one build step in a fresh, locked-down container (the only module that runs them).

``container_config`` is a pure translation from a step to Docker SDK arguments;
``Sandbox.run_step`` does the I/O: create, attach, start, stream, enforce, remove.
``Sandbox`` is the Docker ``StepRunner`` (see ``protocol``; ``fake`` is the other one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig, Ulimit

from orchestrator.errors import SandboxError
from orchestrator.project.environment import Offer
from orchestrator.sandbox.image.bun_defaults import read_default_trusted
from orchestrator.sandbox.image.toolchains import image_offer
from orchestrator.sandbox.output import ContainerById, Pumped, Watchdog, pump
from orchestrator.sandbox.pool import ContainerPool, Slot, build_filter, exec_config
from orchestrator.sandbox.protocol import OutputSink, StepResult
from orchestrator.sandbox.step import Limits, Step, Toolchain

log = logging.getLogger("kiln.sandbox")
WORKSPACE = "/workspace"
NPM_CACHE = "/cache/npm"
CA_PATH = "/etc/kiln/ca.crt"
TOOLS = "/opt/kiln/fetched"
LABEL_BUILD = "kiln.build"
LABEL_STEP = "kiln.step"
LABEL_INSTANCE = "kiln.instance"
# Folders under node_modules that build tools write to (tsc -b's tsbuildinfo, Vite's
# bundled config and pre-bundles, babel/eslint caches). A build gets a private tmpfs on
# each; the rest of the layer is read-only.
SCRATCH_DIRS = (".tmp", ".vite", ".vite-temp", ".cache")


@dataclass(frozen=True)
class SandboxOptions:
    """Server-wide sandbox settings that do not vary per build."""

    image: str
    uid: int
    pids_limit: int
    nofile_limit: int
    tmpfs_mb: int
    registry: str
    network: str  # the internal network of network steps; their only way out is the proxy
    proxy_url: str
    runtime: str  # OCI runtime of steps without network ("runsc": gVisor); empty: default
    npm_cache_dir: Path | None
    ca_bundle: Path | None
    instance: str = "kiln"
    # Package managers' caches and stores (container path -> host folder), like the npm
    # cache mounted into install steps only (network steps run no project code).
    manager_caches: Mapping[str, Path] = field(default_factory=dict)
    dev_runtime: str = ""  # OCI runtime of dev-session containers; empty: Docker's default
    # Where facts read from the image by running it (bun's default list) are cached.
    facts_dir: Path | None = None


def sandbox_environment(step: Step, options: SandboxOptions) -> dict[str, str]:
    """A fixed, minimal environment: nothing from the host leaks in.

    The step's own ``env`` (a submit's build settings) comes first, then its ``toolenv``
    (Kiln's own choice of Node and package manager, which may set ``PATH``), so Kiln's
    registry, proxy and CA names win over both."""
    toolenv = dict(step.toolenv)
    env = (
        dict(step.env)
        | toolenv
        | {
            "PATH": toolenv.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": "/tmp",
            "CI": "1",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "npm_config_registry": options.registry,
            "npm_config_cache": NPM_CACHE if step.network else "/tmp/.npm",
            # npm would run a project's `git` setting for git dependencies; there is none.
            "npm_config_git": "/nonexistent/git-is-disabled",
        }
    )
    if step.network and options.proxy_url:
        env |= {
            "npm_config_https_proxy": options.proxy_url,
            "npm_config_proxy": options.proxy_url,
            "npm_config_noproxy": "",
            "https_proxy": options.proxy_url,
            "HTTPS_PROXY": options.proxy_url,
        }
    if options.ca_bundle is not None:
        env["NODE_EXTRA_CA_CERTS"] = CA_PATH
        env["npm_config_cafile"] = CA_PATH
    return env


def step_folder(step: Step) -> str:
    """Where in the container ``step`` runs: the workspace, or its ``workdir`` inside it."""
    return f"{WORKSPACE}/{step.workdir}" if step.workdir else WORKSPACE


def layer_mounts(
    node_modules: Path, options: SandboxOptions, folder: str = WORKSPACE
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(volumes, tmpfs) that put a shared dependency layer read-only at the node_modules of
    ``folder`` (the workspace, or the app's folder in it), with a private writable tmpfs on
    each of its scratch folders."""
    target = f"{folder}/node_modules"
    volumes = {str(node_modules): {"bind": target, "mode": "ro"}}
    scratch = f"rw,nosuid,nodev,size={options.tmpfs_mb}m,uid={options.uid},gid={options.uid}"
    return volumes, {f"{target}/{name}": scratch for name in SCRATCH_DIRS}


# Writes "$2" to /tmp/"$1" (never over a file already there), then runs the step's command.
WRITE_TMP_FILE = 'set -C && printf "%s" "$2" > "/tmp/$1" && shift 2 && exec "$@"'
PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")


def step_command(step: Step) -> list[str]:
    """The container's command: ``step.argv``, after writing ``step.tmp_file`` when it has one."""
    if step.tmp_file is None:
        return step.argv
    name, text = step.tmp_file
    if not PLAIN_NAME.fullmatch(name) or name in {".", ".."}:
        raise SandboxError(f"refusing a file name for the container's /tmp: {name!r}")
    return ["/bin/sh", "-c", WRITE_TMP_FILE, "kiln-tmp-file", name, text, *step.argv]


def container_config(
    step: Step,
    *,
    build_id: str,
    limits: Limits,
    workspace: Path,
    options: SandboxOptions,
    node_modules: Path | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` that run ``step`` for ``build_id``.

    ``node_modules``: a shared dependency layer, mounted read-only (never with network or
    the npm cache: a layer only ever reaches containers that run project code).
    """
    volumes: dict[str, dict[str, str]] = {str(workspace): {"bind": WORKSPACE, "mode": "rw"}}
    tmpfs = {"/tmp": f"rw,exec,nosuid,nodev,size={options.tmpfs_mb}m,mode=1777"}
    if step.network and options.npm_cache_dir is not None:
        volumes[str(options.npm_cache_dir)] = {"bind": NPM_CACHE, "mode": "rw"}
    if step.network:
        for inside, host in options.manager_caches.items():
            volumes[str(host)] = {"bind": inside, "mode": "rw"}
    if options.ca_bundle is not None:
        volumes[str(options.ca_bundle)] = {"bind": CA_PATH, "mode": "ro"}
    if step.tools is not None:  # a package manager fetched for packageManager, never written to
        volumes[str(step.tools)] = {"bind": TOOLS, "mode": "ro"}
    if node_modules is not None:
        if step.network:
            raise SandboxError(f"refusing to mount a dependency layer into {step.name}")
        layer_volumes, layer_tmpfs = layer_mounts(node_modules, options, step_folder(step))
        volumes.update(layer_volumes)
        tmpfs.update(layer_tmpfs)
    memory = f"{limits.memory_mb}m"
    config: dict[str, Any] = {
        "image": options.image,
        "command": step_command(step),
        "user": f"{options.uid}:{options.uid}",
        "working_dir": step_folder(step),
        "environment": sandbox_environment(step, options),
        "labels": {LABEL_BUILD: build_id, LABEL_STEP: step.name, LABEL_INSTANCE: options.instance},
        "network_mode": options.network if step.network else "none",
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": int(limits.cpus * 1_000_000_000),
        "pids_limit": options.pids_limit,
        "ulimits": [Ulimit(name="nofile", soft=options.nofile_limit, hard=options.nofile_limit)],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": tmpfs,
        "volumes": volumes,
        "stdin_open": False,
        "tty": False,
        # Output is read live through attach; the engine keeps no copy on the host's disk.
        "log_config": LogConfig(type=LogConfig.types.NONE),
    }
    if options.runtime and not step.network:
        config["runtime"] = options.runtime
    return config


def sandbox_uid(configured: int) -> int:
    """The uid containers run as: the configured one under a root worker, else the worker's."""
    return configured if os.geteuid() == 0 else os.geteuid()


def hand_over(root: Path, uid: int) -> None:
    """Give a host folder tree to the sandbox user (a root worker only; otherwise a no-op)."""
    if os.geteuid() != 0 or uid == 0:
        return
    for current, dirs, files in os.walk(root):
        os.chown(current, uid, uid, follow_symlinks=False)
        for name in dirs + files:
            os.chown(os.path.join(current, name), uid, uid, follow_symlinks=False)


def image_toolchain(client: docker.DockerClient, image: str) -> Toolchain:
    """The toolchain of a sandbox image: its id, Node version (its label), platform."""
    found = client.images.get(image)
    attrs = found.attrs or {}
    node = (found.labels or {}).get("kiln.node.version") or "unknown"
    platform = f"{attrs.get('Os', 'linux')}/{attrs.get('Architecture', 'unknown')}"
    return Toolchain(image_id=str(found.id), node_version=str(node), platform=platform)


def check_runtime(client: docker.DockerClient, runtime: str) -> str:
    """Describe the runtime steps without network use; SandboxError if it is not registered."""
    if not runtime:
        return "runc (Docker's default)"
    registered = client.info().get("Runtimes", {})
    if runtime not in registered:
        raise SandboxError(
            f"KILN_BUILD_RUNTIME={runtime} but the Docker engine has no such runtime "
            f"(it has: {', '.join(sorted(registered))}); see README, 'gVisor'"
        )
    return f"{runtime} for scripts and build steps"


HOST_SOCKETS = ("--host-uds=create", "--host-uds=all")


def check_dev_runtime(client: docker.DockerClient, runtime: str) -> str:
    """Describe the runtime of dev sessions; SandboxError when it cannot carry one.

    A session's dev server listens on unix sockets in a folder the host mounts in. gVisor
    keeps sockets made in its sandbox to itself unless its runtime has ``--host-uds=create``
    (or ``all``), so a runsc runtime without it would start sessions that never answer."""
    if not runtime:
        return "runc (Docker's default)"
    registered = client.info().get("Runtimes", {})
    if runtime not in registered:
        raise SandboxError(
            f"the dev-session runtime {runtime} is not registered with the Docker engine "
            f"(it has: {', '.join(sorted(registered))}); set KILN_DEV_RUNTIME"
        )
    spec = registered[runtime] or {}
    is_gvisor = Path(str(spec.get("path", runtime))).name == "runsc"
    if is_gvisor and not set(spec.get("runtimeArgs") or []) & set(HOST_SOCKETS):
        raise SandboxError(
            f"the dev-session runtime {runtime} is gVisor without --host-uds=create, so the "
            "host cannot reach a session's dev server; set KILN_DEV_RUNTIME=runsc-dev "
            "(scripts/lib.sh registers it) or another runtime"
        )
    return f"{runtime} for dev sessions"


@dataclass(frozen=True)
class _Run:
    """One step's run: what it is, its limits, where its output goes, when to stop."""

    step: Step
    limits: Limits
    on_output: OutputSink
    should_cancel: Callable[[], bool]
    max_output_bytes: int | None

    def result(
        self, exit_code: int, oom: bool, watchdog: Watchdog, pumped: Pumped, started: float
    ) -> StepResult:
        return StepResult(
            exit_code=exit_code,
            oom_killed=oom,
            timed_out=watchdog.timed_out,
            cancelled=watchdog.cancelled,
            seconds=time.monotonic() - started,
            output_bytes=pumped.bytes,
            output_overflow=pumped.overflow,
        )


def scratch_options(tmpfs_options: str) -> str:
    """A layer scratch folder's tmpfs data for mount(2): Docker's option string without
    the flags (rw, nosuid, nodev), which the pool passes as mount flags."""
    flags = {"rw", "nosuid", "nodev", "noexec"}
    return ",".join(o for o in tmpfs_options.split(",") if o not in flags)


class Sandbox:
    """Runs build steps as containers on one Docker engine (in an idle container of
    ``pool`` when one matches the step: see ``pool``)."""

    def __init__(
        self,
        client: docker.DockerClient,
        options: SandboxOptions,
        pool: ContainerPool | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.pool = pool

    def run_step(
        self,
        step: Step,
        *,
        build_id: str,
        limits: Limits,
        workspace: Path,
        on_output: OutputSink,
        should_cancel: Callable[[], bool],
        max_output_bytes: int | None = None,
        node_modules: Path | None = None,
    ) -> StepResult:
        """Run ``step`` to its end, streaming output lines to ``on_output(stream, lines)``.

        Past ``max_output_bytes`` of output the container is killed and reading stops.
        """
        config = container_config(
            step,
            build_id=build_id,
            limits=limits,
            workspace=workspace,
            options=self.options,
            node_modules=node_modules,
        )
        run = _Run(step, limits, on_output, should_cancel, max_output_bytes)
        slot = self._slot(step, limits, node_modules, build_id)
        if slot is not None:
            pooled = self._run_pooled(slot, run, config, workspace, node_modules)
            if pooled is not None:
                return pooled
        return self._run_fresh(run, config)

    def _run_fresh(self, run: _Run, config: dict[str, Any]) -> StepResult:
        """Run the step in a container of its own: create, attach, start, stream, remove."""
        step = run.step
        started = time.monotonic()
        try:
            container = self.client.containers.create(**config)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"sandbox image {self.options.image} is missing; run `kiln image build`"
            ) from exc
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"could not create the {step.name} container: {exc}") from exc
        watchdog = Watchdog(container, started + run.limits.timeout_s, run.should_cancel)
        try:
            frames = self.client.api.attach(
                container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True
            )
            container.start()
            watchdog.start()
            pumped = pump(frames, run.on_output, run.max_output_bytes)
            if pumped.overflow:
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
            status = container.wait(timeout=30)
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"the {step.name} container failed: {exc}") from exc
        finally:
            watchdog.done.set()
            self._remove(container)
        return run.result(int(status.get("StatusCode", -1)), oom, watchdog, pumped, started)

    def _slot(
        self, step: Step, limits: Limits, node_modules: Path | None, build_id: str
    ) -> Slot | None:
        """An idle container for ``step``, or None (see ``pool`` for which steps fit)."""
        if self.pool is None or step.tools is not None:
            return None
        if not step.network and self.options.runtime:  # host mounts do not reach gVisor
            return None
        return self.pool.take(step, limits, build_id)

    def _run_pooled(
        self,
        slot: Slot,
        run: _Run,
        config: dict[str, Any],
        workspace: Path,
        node_modules: Path | None,
    ) -> StepResult | None:
        """Run the step in the idle container of ``slot``; None when its workspace could not
        be put there (the step then starts its own container)."""
        assert self.pool is not None
        step, started = run.step, time.monotonic()
        try:
            layer = None
            if node_modules is not None:
                folder = step_folder(step)
                _volumes, tmpfs = layer_mounts(node_modules, self.options, folder)
                scratch = {
                    name: scratch_options(tmpfs[f"{folder}/node_modules/{name}"])
                    for name in SCRATCH_DIRS
                }
                layer = (node_modules, f"{step.workdir}/node_modules".strip("/"), scratch)
            self.pool.mount_workspace(slot, workspace, layer)
            made = self.client.api.exec_create(slot.container_id, **exec_config(config))
        except (SandboxError, docker.errors.APIError, requests.exceptions.RequestException) as exc:
            self.pool.finish(slot)
            log.warning("step %s: idle container %s not usable (%s)", step.name, slot.name, exc)
            return None
        container = ContainerById(self.client, slot.container_id)

        def ended() -> bool:  # the step's process is gone, yet something holds its output
            return not self.client.api.exec_inspect(made["Id"]).get("Running")

        deadline = started + run.limits.timeout_s
        watchdog = Watchdog(container, deadline, run.should_cancel, ended)
        try:
            frames = self.client.api.exec_start(made["Id"], stream=True, demux=True)
            watchdog.start()
            pumped = pump(frames, run.on_output, run.max_output_bytes)
            watchdog.done.set()  # the stream is over: nothing left to watch
            if pumped.overflow:
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
            code = self.client.api.exec_inspect(made["Id"]).get("ExitCode")
            exit_code = -1 if code is None else int(code)
            stopped = watchdog.timed_out or watchdog.cancelled or pumped.overflow
            oom = exit_code != 0 and not stopped and self.pool.is_oom(slot)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"the {step.name} container failed: {exc}") from exc
        finally:
            watchdog.done.set()
            self.pool.finish(slot)  # its processes are gone once this returns
        return run.result(exit_code, oom, watchdog, pumped, started)

    @staticmethod
    def _remove(container: Any) -> None:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass  # the pipeline and the janitor sweep labelled leftovers later

    def prepare_dir(self, folder: Path) -> None:
        """Give a host folder to the sandbox user (see ``hand_over``)."""
        hand_over(folder, self.options.uid)

    def toolchain(self) -> Toolchain:
        """The toolchain of this sandbox's image (asks the engine)."""
        return image_toolchain(self.client, self.options.image)

    def offer(self) -> Offer:
        """What this sandbox's image offers, from its labels (asks the engine)."""
        return image_offer(self.client, self.options.image)

    def bun_default_trusted(self) -> frozenset[str]:
        """bun's default trusted dependencies in this sandbox's image (read once per image)."""
        o = self.options
        return read_default_trusted(
            self.client, o.image, uid=o.uid, cache_dir=o.facts_dir, instance=o.instance
        )

    def remove_build_containers(self, build_id: str) -> int:
        """Force-remove every container of this instance labelled with ``build_id``."""
        labels = [f"{LABEL_BUILD}={build_id}", f"{LABEL_INSTANCE}={self.options.instance}"]
        containers = self.client.containers.list(all=True, sparse=True, filters={"label": labels})
        if self.pool is not None:  # an idle container still running one of its steps
            pooled = build_filter(self.options.instance, build_id)
            containers += self.client.containers.list(sparse=True, filters=pooled)
        for container in containers:
            self._remove(container)
        return len(containers)
