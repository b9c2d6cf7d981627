"""Unit tests for orchestrator.dev.container: a session's container is a hardened step."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.builds.app_folders import ProjectFolders
from orchestrator.dev.container import (
    AGENT_MOUNT,
    RUN_MOUNT,
    DevAgent,
    DevHost,
    dev_container_config,
    dev_step,
    is_session_label,
)
from orchestrator.project.app_folder import AppLayout
from orchestrator.project.environment import Manager
from orchestrator.sandbox.image.toolchains import step_path
from orchestrator.sandbox.runner import SandboxOptions
from orchestrator.sandbox.step import Limits

OPTIONS = SandboxOptions(
    image="kiln-sandbox-node:22",
    uid=10001,
    pids_limit=512,
    nofile_limit=8192,
    tmpfs_mb=512,
    registry="https://registry.npmjs.org/",
    network="kiln-sandbox",
    proxy_url="http://172.30.213.1:3128",
    runtime="",
    npm_cache_dir=Path("/var/cache/npm"),
    ca_bundle=None,
    instance="test",
)


def config(
    node_modules: Path | None = None,
    layout: AppLayout | None = None,
    options: SandboxOptions = OPTIONS,
) -> dict[str, object]:
    layout = layout or AppLayout()
    return dev_container_config(
        "shop",
        host=DevHost("dev--shop.preview.localhost", 8000),
        limits=Limits(600, 1024, 1.0),
        folders=ProjectFolders(Path("/var/work/dev-shop"), layout),
        agent=DevAgent(Path("/var/work/dev-shop.run")),
        options=options,
        node_modules=node_modules,
        step=dev_step(layout.app),
    )


def test_the_session_container_has_no_network_and_a_build_steps_hardening() -> None:
    c = config()
    assert c["network_mode"] == "none"
    assert c["user"] == "10001:10001"
    assert c["cap_drop"] == ["ALL"]
    assert c["security_opt"] == ["no-new-privileges"]
    assert c["read_only"] is True
    assert c["mem_limit"] == c["memswap_limit"] == "1024m"
    assert c["pids_limit"] == 512
    env = c["environment"]
    assert isinstance(env, dict)
    assert "https_proxy" not in env and "npm_config_https_proxy" not in env
    assert env["KILN_DEV_HOST"] == "dev--shop.preview.localhost"
    assert env["KILN_DEV_REVISION"] == "0"  # a session's first start


def test_the_agent_counts_on_from_the_revision_the_workspace_holds() -> None:
    c = dev_container_config(
        "shop",
        host=DevHost("dev--shop.preview.localhost", 8000),
        limits=Limits(600, 1024, 1.0),
        folders=ProjectFolders(Path("/var/work/dev-shop"), AppLayout()),
        agent=DevAgent(Path("/var/work/dev-shop.run"), revision=7),
        options=OPTIONS,
        node_modules=None,
    )
    environment = c["environment"]
    assert isinstance(environment, dict) and environment["KILN_DEV_REVISION"] == "7"


def test_labels_mounts_and_the_stdin_that_ends_it() -> None:
    c = config(node_modules=Path("/layers/abc/node_modules"))
    assert c["labels"] == {
        "kiln.build": "dev-shop",
        "kiln.step": "dev",
        "kiln.instance": "test",
        "kiln.dev": "1",
        "kiln.project": "shop",
    }
    volumes = c["volumes"]
    assert isinstance(volumes, dict)
    binds = {v["bind"]: v["mode"] for v in volumes.values()}
    assert binds[AGENT_MOUNT] == "ro" and binds[RUN_MOUNT] == "rw"
    assert binds["/workspace/node_modules"] == "ro"
    assert "/cache/npm" not in binds  # the npm cache never meets project code
    assert c["stdin_open"] is True and c["auto_remove"] is True


def test_session_labels_are_recognised() -> None:
    assert is_session_label({"kiln.dev": "1", "kiln.project": "shop"}) == "shop"
    assert is_session_label({"kiln.build": "dev-shop"}) == "shop"  # its install steps
    assert is_session_label({"kiln.build": "0123456789abcdef"}) is None


def test_the_session_runs_the_node_its_environment_chose() -> None:
    path = step_path(20, Manager.PNPM)
    equipped = replace(dev_step(), toolenv=(("PATH", path),))
    c = dev_container_config(
        "shop",
        host=DevHost("dev--shop.preview.localhost", 8000),
        limits=Limits(600, 1024, 1.0),
        folders=ProjectFolders(Path("/var/work/dev-shop")),
        agent=DevAgent(Path("/var/work/dev-shop.run")),
        options=OPTIONS,
        node_modules=None,
        step=equipped,
    )
    assert c["environment"]["PATH"] == path
    assert c["network_mode"] == "none"
    with pytest.raises(ValueError, match="never has network"):
        dev_container_config(
            "shop",
            host=DevHost("dev--shop.preview.localhost", 8000),
            limits=Limits(600, 1024, 1.0),
            folders=ProjectFolders(Path("/var/work/dev-shop")),
            agent=DevAgent(Path("/var/work/dev-shop.run")),
            options=OPTIONS,
            node_modules=None,
            step=replace(equipped, network=True),
        )


def test_the_session_runs_under_its_own_runtime_not_the_builds() -> None:
    def runtime(options: SandboxOptions) -> object:
        return config(options=options).get("runtime")

    assert runtime(replace(OPTIONS, runtime="runsc", dev_runtime="runsc-dev")) == "runsc-dev"
    assert runtime(replace(OPTIONS, runtime="runsc", dev_runtime="")) is None
    assert runtime(OPTIONS) is None


def test_an_app_in_a_subfolder_runs_vite_there_with_its_layer_there() -> None:
    c = config(node_modules=Path("/layers/abc/node_modules"), layout=AppLayout("front", "front"))
    env = c["environment"]
    assert isinstance(env, dict)
    assert c["working_dir"] == env["KILN_DEV_ROOT"] == "/workspace/front"
    assert env["KILN_DEV_TOP"] == "/workspace"  # edits name files from the project's top
    assert env["KILN_DEV_ALLOW"] == "/workspace/front"
    volumes = c["volumes"]
    assert isinstance(volumes, dict)
    binds = {v["bind"]: v["mode"] for v in volumes.values()}
    assert binds["/workspace/front/node_modules"] == "ro"
    assert "/workspace/node_modules" not in binds


def test_a_workspace_member_may_read_its_workspace_root_and_takes_no_layer() -> None:
    member = AppLayout(app="apps/web", install="", workspace="workspaces")
    env = config(layout=member)["environment"]
    assert isinstance(env, dict)
    assert env["KILN_DEV_ROOT"] == "/workspace/apps/web"
    assert env["KILN_DEV_ALLOW"] == env["KILN_DEV_TOP"] == "/workspace"  # never more
    with pytest.raises(ValueError, match="no shared layer"):
        config(node_modules=Path("/layers/abc/node_modules"), layout=member)
    with pytest.raises(ValueError, match="app's folder"):
        dev_container_config(
            "shop",
            host=DevHost("dev--shop.preview.localhost", 8000),
            limits=Limits(600, 1024, 1.0),
            folders=ProjectFolders(Path("/var/work/dev-shop"), member),
            agent=DevAgent(Path("/var/work/dev-shop.run")),
            options=OPTIONS,
            node_modules=None,
            step=dev_step(),
        )
