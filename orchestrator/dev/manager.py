"""The dev worker: runs dev sessions on a worker host, beside ``kiln worker``.

``python -m orchestrator.dev.manager`` (started by ``kiln worker``, or on its own as
``kiln dev-worker``). It beats in Redis with its free slots, takes waiting sessions while
it has room (``KILN_DEV_MAX_SESSIONS``), obeys stop and reinstall commands, and stops
sessions that were idle for ``KILN_DEV_IDLE_S``. Each session's life runs in a thread of
its own: workspace, install, container, readiness; then it waits to be stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import stat
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import requests.exceptions

from orchestrator.builds.app_folders import ProjectFolders
from orchestrator.context import Context
from orchestrator.dev.container import (
    DevAgent,
    DevHost,
    dev_container_config,
    dev_step,
    session_label,
)
from orchestrator.dev.folders import SessionFacts, is_fact, session_facts
from orchestrator.dev.install import SessionInstaller, SessionStopped
from orchestrator.dev.record import DevStatus
from orchestrator.dev.registry import DevRegistry
from orchestrator.dev.urls import dev_host, public_port, session_source
from orchestrator.dev.vite import vite_warnings
from orchestrator.errors import BuildError, ErrorCode, KilnError
from orchestrator.logs import configure_logging
from orchestrator.sandbox import workspace
from orchestrator.sandbox.output import LineSplitter
from orchestrator.sandbox.runner import Sandbox, SandboxOptions, check_dev_runtime
from orchestrator.sandbox.step import Limits
from orchestrator.settings import get_settings

log = logging.getLogger("kiln.dev")
BEAT_S = 2.0
RECONCILE_S = 5.0
SOCKET_WAIT_S = 60.0
READY_TIMEOUT_S = 120.0
AGENT_VITE = "[kiln-agent] vite "


_RUNTIMES_OK: set[str] = set()  # dev runtimes this process found able to carry a session


class RunningSession(threading.Thread):
    """One session on this worker: its workspace, install, container, and its end."""

    def __init__(self, manager: DevManager, project: str) -> None:
        super().__init__(daemon=True, name=f"dev-{project}")
        self.manager = manager
        self.ctx = manager.ctx
        self.project = project
        self.registry = manager.registry
        s = self.ctx.settings
        self.workspace = s.work_dir / session_label(project)
        self.run_dir = s.work_dir / f"{session_label(project)}.run"
        self.limits = Limits(s.timeout_s, s.memory_mb, s.cpus)
        self.stop_requested = threading.Event()
        self.reinstall_requested = threading.Event()
        self.container: Any = None
        self.stdin: Any = None
        self.tail: list[str] = []
        self.revision = 0  # the session's revision its workspace was made at
        self.installer = SessionInstaller(
            self.ctx,
            project,
            workspace=self.workspace,
            limits=self.limits,
            on_output=self._output,
            note=self._note,
            stopped=self.stop_requested.is_set,
        )

    # -- the life of a session ------------------------------------------------------------

    def run(self) -> None:
        """Start the session, serve it until asked to stop, then clean up."""
        try:
            self._prepare()
            while True:
                self._install_and_start()
                while not self.stop_requested.wait(0.5):
                    if self.reinstall_requested.is_set() or not self._container_running():
                        break
                if self.stop_requested.is_set():
                    break
                if not self.reinstall_requested.is_set():
                    raise BuildError("the dev server exited", code=ErrorCode.DEV_SERVER_EXITED)
                self.reinstall_requested.clear()
                self._note("package.json's dependencies changed: installing and restarting")
                self._remove_container()
                self.installer.release()
                # Anew from the API's copy: the dev server (project code) may have written
                # anything into the workspace, and the install reads it with network.
                self._prepare()
            self._end(DevStatus.STOPPED)
        except SessionStopped:
            self._end(DevStatus.STOPPED)
        except KilnError as exc:
            log.warning("dev session %s failed: %s", self.project, exc.message)
            self._end(DevStatus.FAILED, exc.code, exc.message)
        except Exception as exc:
            log.exception("dev session %s crashed", self.project)
            self._end(DevStatus.FAILED, "sandbox_error", f"internal error: {exc}")
        finally:
            self._cleanup()
            self.manager.forget(self.project)

    def _prepare(self) -> None:
        workspace.create(self.workspace, self.ctx.settings.workspace_mb)
        with self.registry.edit_lock(self.project):  # no edit lands between copy and count
            with tarfile.open(session_source(self.ctx.settings, self.project)) as archive:
                archive.extractall(self.workspace, filter="data")  # the API's checked file map
            session = self.registry.get(self.project)
            self.revision = session.revision if session else 0
        self.ctx.sandbox.prepare_dir(self.workspace)

    def _source_facts(self, root: str | None) -> SessionFacts:
        """Where the app is, its package.json and the files that choose the environment
        (lockfiles, .nvmrc, ...) from the API's copy of the session's files, never from the
        workspace (project code there may have turned them into links)."""
        files: dict[str, bytes] = {}
        with tarfile.open(session_source(self.ctx.settings, self.project)) as archive:
            for member in archive:
                extracted = archive.extractfile(member) if is_fact(member.name) else None
                if extracted is not None:
                    files[member.name] = extracted.read()
        return session_facts(files, root)  # InputError when an edit removed package.json

    def _install_and_start(self) -> None:
        self._status(DevStatus.INSTALLING)
        session = self.registry.get(self.project)
        facts = self._source_facts(session.root if session else None)
        requested = session.requested_node if session else None
        chosen = self.installer.choose(facts.manifest, facts.files, requested)
        self.registry.update(
            self.project, dependencies=facts.dependencies, environment=chosen.public()
        )
        layer = self.installer.install(facts.manifest, facts.files, facts.layout)
        self._status(DevStatus.STARTING)
        self._start_container(facts, layer.node_modules if layer else None)
        self._wait_for_sockets()
        self._wait_ready()
        self.registry.update(self.project, ready_at=time.time(), last_activity_at=time.time())
        self._status(DevStatus.READY)

    def _start_container(self, facts: SessionFacts, node_modules: Path | None) -> None:
        s = self.ctx.settings
        if self.run_dir.exists():
            self.registry.update(self.project, run_dir="")
            self._unlock_run_dir()
            for leftover in self.run_dir.iterdir():
                leftover.unlink()
        self.run_dir.mkdir(mode=0o700, exist_ok=True)
        self.ctx.sandbox.prepare_dir(self.run_dir)
        config = dev_container_config(
            self.project,
            host=DevHost(dev_host(s, self.project), public_port(s)),
            limits=self.limits,
            folders=ProjectFolders(self.workspace, facts.layout),
            agent=DevAgent(self.run_dir, self.revision),  # the workspace's revision
            options=self._options(),
            node_modules=node_modules,
            step=self.installer.equip(dev_step(facts.layout.app)),  # Node, as its build's
        )
        client = self.ctx.docker
        runtime = self._options().dev_runtime
        if runtime not in _RUNTIMES_OK:  # docker info once per process, not per start
            check_dev_runtime(client, runtime)  # SandboxError: says what to set
            _RUNTIMES_OK.add(runtime)
        try:
            self.container = client.containers.create(**config)
            self.stdin = client.api.attach_socket(
                self.container.id, params={"stdin": 1, "stream": 1}
            )
            frames = client.api.attach(
                self.container.id, stdout=True, stderr=True, stream=True, logs=False, demux=True
            )
            self.container.start()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise BuildError(
                f"could not start the dev container: {exc}", code=ErrorCode.SANDBOX_ERROR
            ) from exc
        self.registry.update(self.project, container=self.container.id)
        threading.Thread(target=self._pump, args=(frames,), daemon=True).start()

    def _options(self) -> SandboxOptions:
        sandbox = self.ctx.sandbox
        if not isinstance(sandbox, Sandbox):
            raise BuildError("dev sessions need the Docker sandbox", code=ErrorCode.SANDBOX_ERROR)
        return sandbox.options

    def _wait_for_sockets(self) -> None:
        deadline = time.monotonic() + SOCKET_WAIT_S
        sockets = [self.run_dir / "dev.sock", self.run_dir / "agent.sock"]
        while not all(p.exists() for p in sockets):
            if self.stop_requested.is_set():
                raise SessionStopped()
            if time.monotonic() > deadline or not self._container_running():
                raise BuildError(
                    "the dev server did not start:\n" + "\n".join(self.tail[-20:]),
                    code=ErrorCode.DEV_SERVER_FAILED,
                )
            time.sleep(0.05)
        self._lock_run_dir(sockets)

    def _lock_run_dir(self, sockets: list[Path]) -> None:
        """Take the socket folder from the container: root-owned, so nothing inside can swap
        a socket for a link to somewhere else; then check what is there is a socket."""
        if os.geteuid() == 0:
            os.chown(self.run_dir, 0, 0)
            os.chmod(self.run_dir, 0o755)
        for path in sockets:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise BuildError(f"{path.name} is not a socket", code=ErrorCode.SANDBOX_ERROR)
        # Only now may the proxy and the API connect through it.
        self.registry.update(self.project, run_dir=str(self.run_dir))

    def _unlock_run_dir(self) -> None:
        if os.geteuid() == 0:
            os.chmod(self.run_dir, 0o700)

    def _wait_ready(self) -> None:
        """Ready means ``/`` answered through the preview host, as a browser asks it."""
        s = self.ctx.settings
        url = f"http://{s.host}:{s.port}/"
        headers = {"Host": f"{dev_host(s, self.project)}:{public_port(s)}", "X-Kiln-Probe": "1"}
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < deadline:
                if self.stop_requested.is_set():
                    raise SessionStopped()
                if not self._container_running():
                    break
                try:
                    answer = http.get(url, headers=headers)
                    if answer.status_code == 200 and "text/html" in answer.headers.get(
                        "content-type", ""
                    ):
                        return
                    last = f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    last = str(exc)
                time.sleep(0.1)
        raise BuildError(
            f"the dev server never answered / ({last}):\n" + "\n".join(self.tail[-20:]),
            code=ErrorCode.DEV_SERVER_FAILED,
        )

    # -- helpers --------------------------------------------------------------------------

    def _container_running(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return True  # the engine hiccuped; do not end a session for it
        return bool(self.container.attrs.get("State", {}).get("Running"))

    def _pump(self, frames: Any) -> None:
        splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        with contextlib.suppress(Exception):
            for out, err in frames:
                for name, chunk in (("stdout", out), ("stderr", err)):
                    if chunk:
                        self._output(name, splitters[name].feed(chunk))

    def _output(self, stream: str, lines: list[str]) -> None:
        if not lines:
            return
        self.tail = (self.tail + lines)[-self.ctx.settings.log_tail_lines :]
        for line in lines:
            if line.startswith(AGENT_VITE):
                version = line[len(AGENT_VITE) :].strip()[:40]
                warnings = vite_warnings(version)
                self.registry.update(self.project, vite_version=version, warnings=warnings)
                for warning in warnings:
                    self._note(f"warning: {warning}")
        self.ctx.bus.dev_logs(self.project, stream, lines)

    def _note(self, text: str) -> None:
        data = {"stream": "stderr", "text": f"[kiln] {text}", "source": "kiln"}
        self.ctx.bus.dev_event(self.project, "log", data)

    def _status(self, status: DevStatus) -> None:
        session = self.registry.get(self.project)
        self.registry.update(self.project, status=status.value)
        revision = session.revision if session else 0
        self.ctx.bus.dev_event(
            self.project, "status", {"status": status.value, "revision": revision}
        )

    def _end(self, status: DevStatus, code: str | None = None, message: str | None = None) -> None:
        error = None
        if code:
            error = {"code": code, "message": message or "", "log_tail": "\n".join(self.tail)}
            self._note(f"{status.value}: {message}")
        self.registry.update(self.project, error=error)
        self._status(status)
        session = self.registry.get(self.project)
        self.ctx.bus.dev_event(
            self.project,
            "end",
            {"status": status.value, "revision": session.revision if session else 0},
        )

    def _remove_container(self) -> None:
        if self.stdin is not None:
            with contextlib.suppress(Exception):
                self.stdin.close()
            self.stdin = None
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.container.remove(force=True)
            self.container = None

    def _cleanup(self) -> None:
        self._remove_container()
        with contextlib.suppress(Exception):
            self.ctx.sandbox.remove_build_containers(session_label(self.project))
        self.installer.release()
        with contextlib.suppress(Exception):
            workspace.remove(self.workspace)
        with contextlib.suppress(OSError):
            for leftover in self.run_dir.iterdir():
                leftover.unlink()
            self.run_dir.rmdir()


class DevManager:
    """Runs this worker's dev sessions."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.registry = DevRegistry(ctx.redis, ctx.settings.instance)
        self.capacity = ctx.settings.dev_max_sessions
        self.running: dict[str, RunningSession] = {}
        self.lock = threading.Lock()
        self.next_reconcile = 0.0

    def free_slots(self) -> int:
        """Sessions this worker may still take."""
        with self.lock:
            return max(0, self.capacity - len(self.running))

    def forget(self, project: str) -> None:
        """A session thread ended."""
        with self.lock:
            self.running.pop(project, None)
        self.registry.beat(self.name, self.free_slots(), int(BEAT_S * 3))

    def step(self) -> None:
        """One round: beat, take waiting sessions, obey one command, stop idle sessions."""
        self.registry.beat(self.name, self.free_slots(), int(BEAT_S * 3))
        while self.free_slots() > 0:
            project = self.registry.pop_start()
            if project is None:
                break
            self.take(project)
        command = self.registry.pop_command(self.name, BEAT_S / 2)
        if command is not None:
            self.obey(command)
        self.stop_idle()
        if time.monotonic() >= self.next_reconcile:
            self.next_reconcile = time.monotonic() + RECONCILE_S
            self.reconcile_lost()

    def reconcile_lost(self) -> None:
        """End sessions whose worker stopped beating (killed, or its host died); the
        janitor then removes what they left on this host."""
        for session in self.registry.sessions():
            if DevStatus(session.status).ended or not session.worker:
                continue
            if session.worker == self.name or self.registry.worker_alive(session.worker):
                continue
            log.warning("dev session %s lost its worker %s", session.project, session.worker)
            error = {
                "code": "worker_lost",
                "message": f"the dev worker {session.worker} stopped; start the session again",
                "log_tail": "",
            }
            self.registry.update(session.project, status=DevStatus.FAILED.value, error=error)
            data = {"status": DevStatus.FAILED.value, "revision": session.revision}
            self.ctx.bus.dev_event(session.project, "status", data)
            self.ctx.bus.dev_event(session.project, "end", data)

    def take(self, project: str) -> None:
        """Run a waiting session here (unless it was stopped while it waited)."""
        session = self.registry.get(project)
        if session is None or DevStatus(session.status).ended:
            return
        self.registry.update(project, worker=self.name, started_at=time.time())
        runner = RunningSession(self, project)
        with self.lock:
            self.running[project] = runner
        self.registry.beat(self.name, self.free_slots(), int(BEAT_S * 3))
        runner.start()

    def obey(self, command: dict[str, str]) -> None:
        """A stop or reinstall command from the API."""
        with self.lock:
            runner = self.running.get(command.get("project", ""))
        if runner is None:
            return
        if command.get("op") == "stop":
            runner.stop_requested.set()
            runner._remove_container()  # within the 5 s DELETE promises
        elif command.get("op") == "reinstall":
            runner.reinstall_requested.set()

    def stop_idle(self) -> None:
        """Stop sessions with no request and no open HMR socket for their idle timeout."""
        now = time.time()
        with self.lock:
            runners = list(self.running.values())
        for runner in runners:
            session = self.registry.get(runner.project)
            if session is None or session.status != DevStatus.READY.value:
                continue
            if now - session.last_activity_at > session.idle_timeout_s:
                runner._note(f"idle for {session.idle_timeout_s} s: stopping")
                runner.stop_requested.set()
                runner._remove_container()

    def shutdown(self) -> None:
        """Stop every session (the worker is going away)."""
        with self.lock:
            runners = list(self.running.values())
        for runner in runners:
            runner.stop_requested.set()
            runner._remove_container()
        for runner in runners:
            runner.join(timeout=10)
        self.registry.forget_worker(self.name)


def run(parent_pid: int | None = None) -> None:
    """Run a dev worker until stopped (or until ``parent_pid`` is gone)."""
    settings = get_settings()
    configure_logging(settings.log_format)
    ctx = Context(settings)
    name = f"{settings.instance}-{socket.gethostname()}-dev-{os.getpid()}"
    manager = DevManager(ctx, name)
    log.info("dev worker %s: up to %s sessions", name, manager.capacity)
    signal.signal(signal.SIGTERM, _stop)
    try:
        while parent_pid is None or os.getppid() == parent_pid:
            try:
                manager.step()
            except Exception:
                log.exception("dev worker round failed")
                time.sleep(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        manager.shutdown()


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def main() -> None:
    """Entry point of ``python -m orchestrator.dev.manager``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=int, default=None, help="exit when this pid is gone")
    args = parser.parse_args()
    run(args.parent)


if __name__ == "__main__":
    main()
