"""Started containers waiting for a step, so that a build does not wait for one to start.

Starting a container costs this engine about 0.2 s (0.4 s on the sandbox network), most
of what Kiln adds to a small project's rebuild. So a worker host keeps a few containers
started (``KILN_CONTAINER_POOL`` per kind: without network, and on the sandbox network),
each idle (``sleep`` under Docker's init) with its own empty slot folder bound at
``/workspace`` with ``rslave`` propagation (the pool's folder is one shared mount). A step
takes a ready slot (an ``flock``), mounts its workspace into the slot on the host (and its
dependency layer with the private scratch folders), where the container sees them at
once, and runs as ``docker exec`` with its own user, folder and environment. The
container is done when the step ends: one that ran project code never runs another.
If anything the step started is still alive then (its cgroup, read on the host, holds
more than the idle container's own two processes), the container is killed before the
step's output is read; else nothing of the step is left to stop: the container is renamed
out of its build's (``used_name``) and the keeper beside each worker (``ops/pool_keeper``)
removes it as it starts a fresh one in the slot. The idle processes run as their own user
(``IDLE_UID``), so a step can neither signal nor trace them into running its code.

Only a step the idle container matches exactly runs there: the same image, limits,
mounts and network, the default runtime (mounts made on the host do not reach a gVisor
sandbox) and no fetched package manager. Everything else starts its own container, as
before. The layer is bound read-only with the kernel's new mount calls
(``mounts.bind_read_only``), so the container's copy of it is read-only too.
``pool_config`` (what an idle container is) and ``exec_config`` (what a step runs there)
are pure; the rest does the I/O.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions

from orchestrator.errors import SandboxError
from orchestrator.records.models import ErrorCode, Phase
from orchestrator.sandbox import cgroups, mounts
from orchestrator.sandbox.step import Limits, Step

log = logging.getLogger("kiln.sandbox.pool")
POOL_LABEL = "pool"  # the kiln.build label of idle (and pooled) containers
LABEL_SLOT = "kiln.pool.slot"
KINDS = ("offline", "online")
IDLE_COMMAND = ["sleep", "infinity"]
# The container's own memory cgroup: ``oom_kill N`` counts processes the kernel killed.
OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
PROBE = ".kiln-pool-probe"
IDLE_UID = 65534  # the idle container's own processes (``nobody``): never a step's user
IDLE_PROCESSES = 2  # Docker's init and its ``sleep``
IDLE_WAIT_S = 2.0  # how long a fresh container may take to show both in its cgroup
DRAIN_WAIT_S = 5.0  # how long a stopping keeper waits for a step to let its slot go
SCRATCH_FLAGS = mounts.MS_NOSUID | mounts.MS_NODEV | mounts.MS_NOEXEC


def released_key(instance: str) -> str:
    """The Redis list a work-horse tells this host's keepers of a used slot on."""
    return f"kiln:{instance}:pool:{socket.gethostname()}"


def step_name(instance: str, build_id: str, step: str, slot: str) -> str:
    """The name of an idle container once a step of ``build_id`` runs in it."""
    return f"{instance}.{build_id or 'none'}.{step}.{slot}"


def used_name(instance: str, slot: str, container_id: str) -> str:
    """The name of a used container whose step left nothing running: no build's any more,
    waiting for the keeper to remove it."""
    return f"{instance}.used.{slot}.{container_id[:12]}"


def build_filter(instance: str, build_id: str) -> dict[str, object]:
    """Docker filters that find the idle containers running a step of ``build_id``."""
    return {"name": f"{instance}.{build_id}.", "label": [f"kiln.build={POOL_LABEL}"]}


def describe(root: Path, size: int) -> str:
    """What ``kiln doctor`` says of a host's pool: its idle containers ready per kind."""
    if size <= 0:
        return "off (KILN_CONTAINER_POOL=0): every step starts its own container"
    disabled = root / "disabled"
    if disabled.is_file():
        raise SandboxError(f"container pool off: {disabled.read_text().strip()}")
    ready = {}
    for kind in KINDS:
        states = [_read_state(root / f"{kind}-{n}.json") for n in range(size)]
        ready[kind] = sum(1 for state in states if state.get("ready"))
    return (
        f"{ready['offline']} of {size} idle containers ready without network, "
        f"{ready['online']} of {size} on the sandbox network (filled by each worker's keeper)"
    )


def _read_state(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def unmount_all(root: Path) -> None:
    """Detach everything mounted in a pool's folder (its slots', then its own mount): what a
    stopped installation leaves (the idle containers must be gone)."""
    while root.is_dir() and mounts.mounts_at(root) > 0:
        mounts.detach(root)  # lazily, with every mount below it


def kind_of(step: Step) -> str:
    """The kind of idle container a step needs."""
    return "online" if step.network else "offline"


def fingerprint(config: dict[str, Any], image_id: str) -> str:
    """What an idle container was made from; a slot whose container differs is remade."""
    plain = {k: v for k, v in config.items() if k not in ("labels", "log_config", "ulimits")}
    plain["ulimits"] = [dict(u) for u in config.get("ulimits", [])]
    text = json.dumps([plain, image_id], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def exec_config(config: dict[str, Any]) -> dict[str, Any]:
    """``exec_create`` arguments that run a fresh container's step in an idle one."""
    return {
        "cmd": config["command"],
        "environment": config["environment"],
        "workdir": config["working_dir"],
        "user": config["user"],
        "stdout": True,
        "stderr": True,
    }


def oom_killed(text: str) -> bool:
    """True when a cgroup's memory events (v1 or v2) count a process the kernel killed."""
    return any(int(n) > 0 for n in re.findall(r"^oom_kill (\d+)$", text, re.MULTILINE))


def idle_step(kind: str) -> Step:
    """The step an idle container of ``kind`` is made for (its mounts and network)."""
    return Step(
        "pool", Phase.BUILDING, list(IDLE_COMMAND), kind == "online", ErrorCode.SANDBOX_ERROR
    )


@dataclass
class Slot:
    """One started container and its folder, taken by one step (its lock held)."""

    name: str
    folder: Path
    container_id: str
    lock_fd: int
    procs: Path | None = None  # the container's cgroup.procs on the host, when known
    idle: frozenset[int] = frozenset()  # its own processes (init, sleep) as they started


class ContainerPool:
    """The idle containers of one Kiln instance on this host (shared by its workers)."""

    def __init__(
        self,
        client: docker.DockerClient,
        root: Path,
        size: int,
        limits: Limits,
        *,
        make_config: Callable[[Step, Path], dict[str, Any]],  # a step's create arguments
        image_id: Callable[[], str],  # the sandbox image's id (asks the engine)
        released: Callable[[str], object] | None = None,  # tells a keeper a slot is free
        instance: str = "kiln",
    ) -> None:
        self.client = client
        self.root = root
        self.size = size
        self.limits = limits
        self.make_config = make_config
        self.image_id = image_id
        self.released = released
        self.instance = instance

    # -- which steps, which slot ---------------------------------------------------------

    def slots(self, kind: str) -> list[str]:
        return [f"{kind}-{n}" for n in range(self.size)]

    def pool_config(self, kind: str, folder: Path) -> dict[str, Any]:
        """The create arguments of an idle container of ``kind`` bound to ``folder``."""
        config = self.make_config(idle_step(kind), folder)
        volumes = dict(config["volumes"])
        volumes[str(folder)] = {**volumes[str(folder)], "mode": "rw,rslave"}
        labels = {**config["labels"], LABEL_SLOT: folder.name}
        user = config["user"].split(":")[0]
        idle = IDLE_UID if user != str(IDLE_UID) else IDLE_UID - 1
        return {
            **config,
            "volumes": volumes,
            "labels": labels,
            "init": True,
            "user": f"{idle}:{idle}",
        }

    def take(self, step: Step, limits: Limits, build_id: str = "") -> Slot | None:
        """A ready slot for ``step`` (locked), or None: start the step's own container.

        The slot's container is renamed after ``build_id`` and the step (``step_name``), so
        that it can be found as the build's (labels cannot change)."""
        if self.size <= 0 or (self.root / "disabled").exists():
            return None
        if (limits.memory_mb, limits.cpus) != (self.limits.memory_mb, self.limits.cpus):
            return None
        kind = kind_of(step)
        expected: str | None = None
        for name in self.slots(kind):
            fd = self._try_lock(name)
            if fd is None:
                continue
            state = self._state(name)
            if expected is None:
                expected = fingerprint(self.pool_config(kind, self.root / name), self.image_id())
            if state.get("ready") and state.get("fingerprint") == expected:
                self._write_state(name, {**state, "ready": False, "build": build_id})
                procs = Path(state["procs"]) if state.get("procs") else None
                idle = frozenset(int(pid) for pid in state.get("idle", ()))
                slot = Slot(name, self.root / name, str(state["container"]), fd, procs, idle)
                if self._rename(slot, step_name(self.instance, build_id, step.name, name)):
                    return slot
                self.finish(slot)
                continue
            os.close(fd)
        return None

    # -- a step in a slot ----------------------------------------------------------------

    def mount_workspace(
        self,
        slot: Slot,
        workspace: Path,
        layer: tuple[Path, str, dict[str, str]] | None,
    ) -> None:
        """Bind ``workspace`` into the slot; ``layer``: (its node_modules, the folder it goes
        at inside the workspace, the scratch tmpfs options by name) on top of it."""
        mounts.mount(str(workspace), str(slot.folder), None, mounts.MS_BIND)
        if layer is None:
            return
        node_modules, target, scratch = layer
        with mounts.folder_beneath(slot.folder, target, make_last=True) as where:
            mounts.bind_read_only(node_modules, where.fd)
        for name, options in scratch.items():
            with mounts.folder_beneath(slot.folder, f"{target}/{name}") as where:
                mounts.mount("tmpfs", where.path, "tmpfs", SCRATCH_FLAGS, options)

    def is_oom(self, slot: Slot) -> bool:
        """Did the kernel kill a process of the slot's container for memory?"""
        try:
            made = self.client.api.exec_create(slot.container_id, ["cat", *OOM_FILES], user="0")
            output = self.client.api.exec_start(made["Id"])
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False
        return oom_killed(output.decode(errors="replace") if isinstance(output, bytes) else "")

    def finish(self, slot: Slot) -> None:
        """Make sure nothing a step started in a slot still runs when this returns (the
        container is killed unless only its idle processes are left), clear the slot's
        mounts and let it go; a keeper (``ops/pool_keeper``) removes the container and
        starts a fresh one there."""
        try:
            # Nothing of the step left: renamed out of its build's (a few ms, a kill ~50 ms).
            let_go = used_name(self.instance, slot.name, slot.container_id)
            if not (self.is_quiet(slot) and self._rename(slot, let_go)):
                with contextlib.suppress(
                    docker.errors.APIError, requests.exceptions.RequestException
                ):
                    self.client.api.kill(slot.container_id)
            self._clear_mounts(slot.folder)
            self._write_state(slot.name, {"ready": False, "container": slot.container_id})
        finally:
            os.close(slot.lock_fd)
        if self.released is not None:
            with contextlib.suppress(Exception):  # the keeper's periodic pass finds it anyway
                self.released(slot.name)

    @staticmethod
    def is_quiet(slot: Slot) -> bool:
        """Does the slot's container hold nothing but its own idle processes?"""
        if slot.procs is None or len(slot.idle) != IDLE_PROCESSES:
            return False
        alive = cgroups.processes(slot.procs)
        return alive is not None and alive <= slot.idle

    # -- filling -------------------------------------------------------------------------

    def fill(self, *, check_running: bool = True) -> int:
        """Start a container in every free slot that has none ready (of the current image
        and settings; ``check_running``: and asks the engine that a ready one still runs);
        how many started."""
        if self.size <= 0:
            return 0
        image, started = self.image_id(), 0
        for kind in KINDS:
            for name in self.slots(kind):
                fd = self._try_lock(name)
                if fd is None:
                    continue
                try:
                    state = self._state(name)
                    expected = fingerprint(self.pool_config(kind, self.root / name), image)
                    ready = state.get("ready") and state.get("fingerprint") == expected
                    if ready and (not check_running or self._running(str(state["container"]))):
                        continue
                    self._start(name, kind)
                    started += 1
                except (SandboxError, docker.errors.APIError, OSError) as exc:
                    log.warning("container pool: slot %s not started: %s", name, exc)
                finally:
                    os.close(fd)
        return started

    def drain(self) -> int:
        """Remove every slot's container and mounts, then the pool's own mount (the keeper
        of a stopping worker); how many slots were emptied."""
        free: set[str] = set()
        for kind in KINDS:
            for name in self.slots(kind):
                fd = self._try_lock(name, wait_s=DRAIN_WAIT_S)  # a step may be finishing
                if fd is None:
                    continue
                try:
                    old = self._state(name).get("container")
                    if old:
                        self._remove(str(old))
                    self._write_state(name, {"ready": False})
                    self._clear_mounts(self.root / name)
                    free.add(name)
                finally:
                    os.close(fd)
        for container in self._idle_containers():  # one a stopped fill had just started
            if container.labels.get(LABEL_SLOT) in free:
                self._remove(str(container.id))
        if len(free) == 2 * self.size:
            unmount_all(self.root)
        return len(free)

    def _idle_containers(self) -> list[Any]:
        labels = [f"kiln.build={POOL_LABEL}", f"kiln.instance={self.instance}"]
        try:
            return list(self.client.containers.list(all=True, filters={"label": labels}))
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return []

    def verify(self) -> bool:
        """Check once that a mount made here reaches an idle container (it does not when
        the engine runs in another mount namespace); the pool is off (``disabled``) if not."""
        marker = self.root / "disabled"
        for name in self.slots("offline"):
            fd = self._try_lock(name)
            if fd is None:
                continue
            try:
                state = self._state(name)
                if not state.get("ready"):
                    continue
                seen = self._probe(self.root / name, str(state["container"]))
            finally:
                os.close(fd)
            if seen:
                marker.unlink(missing_ok=True)
            else:
                marker.write_text("a mount made on this host did not reach the container\n")
                log.warning("container pool off: mounts made here do not reach the engine")
            return seen
        return False

    def _probe(self, folder: Path, container_id: str) -> bool:
        mounts.mount("tmpfs", str(folder), "tmpfs", SCRATCH_FLAGS, "size=1m,mode=0755")
        try:
            (folder / PROBE).write_text("kiln\n")
            made = self.client.api.exec_create(container_id, ["cat", f"/workspace/{PROBE}"])
            return bool(self.client.api.exec_start(made["Id"]) == b"kiln\n")
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False
        finally:
            mounts.detach(folder)

    def is_stale(self, container_id: str, name: str) -> bool:
        """Is this pool container no slot's ready one, and no step's (the janitor asks)?
        A stale one's slot is cleared of its mounts (the caller removes the container)."""
        fd = self._try_lock(name)
        if fd is None:
            return False  # a step (or a renewal) holds the slot
        try:
            state = self._state(name)
            if state.get("ready") and state.get("container") == container_id:
                return False
            if state.get("container") == container_id:
                self._write_state(name, {"ready": False})
            self._clear_mounts(self.root / name)
            return True
        finally:
            os.close(fd)

    @staticmethod
    def _clear_mounts(folder: Path) -> None:
        """Detach a workspace (and its layer) bound into a slot."""
        while folder.is_dir() and mounts.mounts_at(folder) > 0:
            mounts.detach(folder)

    def _start(self, name: str, kind: str) -> None:
        """Clear slot ``name`` (its old container and mounts) and start a fresh container."""
        folder = self.root / name
        old = self._state(name).get("container")
        if old:
            self._remove(str(old))
        self._write_state(name, {"ready": False})
        if mounts.mounts_at(self.root) == 0:  # containers bind slots with rslave: shared
            mounts.make_shared_mount_point(self.root)
        folder.mkdir(exist_ok=True)
        self._clear_mounts(folder)
        config = self.pool_config(kind, folder)
        image = self.image_id()
        container = self.client.containers.create(**config)
        container.start()
        made = {"ready": True, "container": container.id, "fingerprint": fingerprint(config, image)}
        self._write_state(name, made | self._idle_processes(str(container.id)))

    def _idle_processes(self, container_id: str) -> dict[str, Any]:
        """Where a fresh container's cgroup is on the host and its idle processes, once
        both have started; nothing when that cannot be read (its steps are then killed)."""
        info = self.client.api.inspect_container(container_id)
        procs = cgroups.container_procs(int(info.get("State", {}).get("Pid") or 0))
        deadline = time.monotonic() + IDLE_WAIT_S
        while procs is not None and time.monotonic() < deadline:
            alive = cgroups.processes(procs)
            if alive is None:
                break
            if len(alive) == IDLE_PROCESSES:
                return {"procs": str(procs), "idle": sorted(alive)}
            time.sleep(0.01)
        return {}

    def _rename(self, slot: Slot, name: str) -> bool:
        try:
            self.client.api.rename(slot.container_id, name)
        except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
            log.warning("container pool: slot %s not usable: %s", slot.name, exc)
            return False
        return True

    def _remove(self, container_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                self.client.api.remove_container(container_id, force=True)
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                if not isinstance(exc, docker.errors.NotFound):
                    raise SandboxError(f"could not remove idle container: {exc}") from exc

    def _running(self, container_id: str) -> bool:
        try:
            info = self.client.api.inspect_container(container_id)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return False
        return bool(info.get("State", {}).get("Running"))

    # -- slot files ----------------------------------------------------------------------

    def _try_lock(self, name: str, wait_s: float = 0.0) -> int | None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{name}.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(0.05)

    def _state(self, name: str) -> dict[str, Any]:
        return _read_state(self.root / f"{name}.json")

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        tmp = self.root / f".{name}.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.root / f"{name}.json")
