"""The pipeline's environment seam: reading the workspace, image pins, layer toolchains."""

from __future__ import annotations

from pathlib import Path

from orchestrator.builds.environment_io import (
    environment_toolchain,
    read_environment,
)
from orchestrator.cache.keys import Toolchain
from orchestrator.project.environment import Manager, Offer, choose_environment

OFFER = Offer(
    node={20: "20.20.2", 22: "22.23.5"},
    managers={Manager.NPM: "10.9.9", Manager.PNPM: "10.34.9"},
)


def test_reads_the_top_level_files_but_not_symlinks(tmp_path: Path) -> None:
    (tmp_path / ".nvmrc").write_text("20")
    (tmp_path / "secret").write_text("22")
    (tmp_path / ".node-version").symlink_to(tmp_path / "secret")
    env = read_environment(tmp_path, OFFER, {}, None)
    assert (env.node.major, env.node.source) == (20, ".nvmrc")
    (tmp_path / ".nvmrc").unlink()
    assert read_environment(tmp_path, OFFER, {}, None).node.source == "default"


def test_layer_toolchains_differ_by_node_major_and_manager() -> None:
    base = Toolchain("sha256:abc", "22.23.5", "linux/amd64")
    on_20 = choose_environment(OFFER, {}, {}, requested_node=20)
    on_22 = choose_environment(OFFER, {}, {}, requested_node=22)
    with_pnpm = choose_environment(OFFER, {}, {"pnpm-lock.yaml": b""}, requested_node=22)
    keys = {environment_toolchain(base, e).node_version for e in (on_20, on_22, with_pnpm)}
    assert len(keys) == 3
    assert environment_toolchain(base, None) == base
