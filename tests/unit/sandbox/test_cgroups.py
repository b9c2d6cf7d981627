"""Unit tests for orchestrator.sandbox.cgroups: finding a container's processes on the host."""

from __future__ import annotations

from pathlib import Path

from orchestrator.sandbox.cgroups import container_procs, processes, procs_path

V1 = """\
9:name=systemd:/docker/abc
8:pids:/docker/abc
4:memory:/docker/abc
1:cpu,cpuacct:/docker/abc
0::/docker/abc
"""
V2 = "0::/system.slice/docker-abc.scope\n"


def test_cgroup_v1_is_read_in_its_pids_hierarchy() -> None:
    assert procs_path(V1, unified=False) == "pids/docker/abc/cgroup.procs"


def test_cgroup_v2_is_read_in_the_unified_hierarchy() -> None:
    assert procs_path(V2, unified=True) == "system.slice/docker-abc.scope/cgroup.procs"
    assert procs_path(V1, unified=True) == "docker/abc/cgroup.procs"


def test_the_root_cgroup_and_odd_paths_are_never_taken() -> None:
    assert procs_path("0::/\n", unified=True) is None  # every process of the host
    assert procs_path("8:pids:/\n", unified=False) is None
    assert procs_path("0::/docker/../..\n", unified=True) is None
    assert procs_path("garbage\n", unified=True) is None
    assert procs_path(V2, unified=False) is None  # no pids hierarchy named


def test_a_containers_processes_are_read_from_its_cgroup(tmp_path: Path) -> None:
    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    (proc / "77").mkdir(parents=True)
    (proc / "77" / "cgroup").write_text(V2)
    (root / "system.slice" / "docker-abc.scope").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    found = root / "system.slice" / "docker-abc.scope" / "cgroup.procs"
    found.write_text("77\n78\n")
    assert container_procs(77, root, proc) == found
    assert processes(found) == frozenset({77, 78})
    assert container_procs(78, root, proc) is None  # no such process
    found.unlink()
    assert container_procs(77, root, proc) is None and processes(found) is None
