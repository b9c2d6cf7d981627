"""A running container's control groups, read from the host: which processes it holds.

Every process of a container, ``docker exec``'d ones and whatever they start, is in the
container's own cgroup; a process in it cannot leave it (the cgroup filesystem is
read-only in the container and it has no capabilities). So the cgroup's ``cgroup.procs``,
read on the host, says exactly which processes of a container are alive, without a round
trip to the engine. ``/proc/<pid>/cgroup`` of the container's first process names its
cgroup; cgroup v1 (a ``pids`` hierarchy) and v2 (the unified one) are both read.
``procs_path`` is pure; the rest reads files, and says ``None`` when it cannot (a worker
in another pid namespace, a container already gone).
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def procs_path(proc_cgroup: str, *, unified: bool) -> str | None:
    """The ``cgroup.procs`` of a process's cgroup, relative to the cgroup root, from its
    ``/proc/<pid>/cgroup`` text (``unified``: the root is cgroup v2 alone)."""
    for line in proc_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        inside = path.strip("/")
        if not path.startswith("/") or not inside or ".." in inside.split("/"):
            continue  # never the root cgroup (every process of the host)
        if unified and number == "0" and controllers == "":
            return f"{inside}/cgroup.procs"
        if not unified and "pids" in controllers.split(","):
            return f"pids/{inside}/cgroup.procs"
    return None


def container_procs(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> Path | None:
    """The host's ``cgroup.procs`` file of the container whose first process is ``pid``."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    relative = procs_path(text, unified=(root / "cgroup.controllers").is_file())
    if relative is None:
        return None
    path = root / relative
    return path if path.is_file() else None


def processes(procs: Path) -> frozenset[int] | None:
    """The processes in a cgroup now; None when it cannot be read (it is gone)."""
    try:
        return frozenset(int(word) for word in procs.read_text().split())
    except (OSError, ValueError):
        return None
