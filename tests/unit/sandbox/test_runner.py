"""Unit tests for the pure parts of orchestrator.sandbox.runner (no Docker)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SandboxError
from orchestrator.records.models import Phase
from orchestrator.sandbox.runner import (
    CA_PATH,
    NPM_CACHE,
    SCRATCH_DIRS,
    WORKSPACE,
    SandboxOptions,
    StepResult,
    container_config,
    sandbox_environment,
    step_command,
)
from orchestrator.sandbox.step import Limits, Step

LIMITS = Limits(timeout_s=600, memory_mb=1536, cpus=1.5)
INSTALL = Step("install", Phase.INSTALLING, ["npm", "ci"], network=True, failure_code="x")
BUILD = Step("build", Phase.BUILDING, ["npm", "run", "build"], network=False, failure_code="y")
OPTIONS = SandboxOptions(
    image="kiln-sandbox-node:22",
    uid=10001,
    pids_limit=256,
    nofile_limit=4096,
    tmpfs_mb=128,
    registry="https://registry.example/",
    network="kiln-sandbox",
    proxy_url="http://172.30.213.1:3128",
    runtime="",
    npm_cache_dir=Path("/var/kiln/cache/npm"),
    ca_bundle=Path("/etc/ssl/certs/ca.crt"),
)
NO_EXTRAS = replace(OPTIONS, npm_cache_dir=None, ca_bundle=None)


def config(step: Step, options: SandboxOptions = OPTIONS, **kw: Any) -> dict[str, Any]:
    return container_config(
        step,
        build_id=kw.get("build_id", "0123456789abcdef"),
        limits=kw.get("limits", LIMITS),
        workspace=kw.get("workspace", Path("/var/kiln/work/b1")),
        options=options,
        node_modules=kw.get("node_modules"),
    )


# ------------------------------------------------------------ container_config


def test_a_step_with_a_tmp_file_writes_it_then_runs_its_command(tmp_path: Path) -> None:
    step = replace(BUILD, tmp_file=("rc.yml", 'a: "$(x)" `y`'))
    command = config(step)["command"]
    assert command[0] == "/bin/sh" and command[-3:] == ["npm", "run", "build"]
    assert config(BUILD)["command"] == ["npm", "run", "build"]
    # the real shell, with /tmp swapped for a test folder: the text is written as given
    script = command[2].replace("/tmp/", f"{tmp_path}/")
    argv = ["/bin/sh", "-c", script, *command[3:-3], "cat", str(tmp_path / "rc.yml")]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout == 'a: "$(x)" `y`', done
    again = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert again.returncode != 0  # never over a file already there


@pytest.mark.parametrize("name", ["../etc/x", "a/b", "..", "", "a b"])
def test_a_tmp_file_name_is_a_plain_name(name: str) -> None:
    with pytest.raises(SandboxError):
        step_command(replace(BUILD, tmp_file=(name, "x")))


def test_runs_the_step_as_the_unprivileged_user_in_the_workspace() -> None:
    got = config(BUILD)
    assert got["image"] == "kiln-sandbox-node:22"
    assert got["command"] == ["npm", "run", "build"]
    assert got["user"] == "10001:10001"
    assert got["working_dir"] == WORKSPACE
    assert got["stdin_open"] is False and got["tty"] is False


def test_labels_name_the_build_step_and_instance() -> None:
    assert config(INSTALL, build_id="feedfacecafebeef")["labels"] == {
        "kiln.build": "feedfacecafebeef",
        "kiln.step": "install",
        "kiln.instance": "kiln",
    }


@pytest.mark.parametrize(("step", "network"), [(INSTALL, "kiln-sandbox"), (BUILD, "none")])
def test_only_network_steps_get_the_install_network(step: Step, network: str) -> None:
    assert config(step)["network_mode"] == network


@pytest.mark.parametrize(
    ("limits", "memory", "nano_cpus"),
    [
        (LIMITS, "1536m", 1_500_000_000),
        (Limits(timeout_s=1, memory_mb=512, cpus=0.5), "512m", 500_000_000),
        (Limits(timeout_s=1, memory_mb=4096, cpus=2.0), "4096m", 2_000_000_000),
    ],
)
def test_memory_without_swap_and_cpu_quota(limits: Limits, memory: str, nano_cpus: int) -> None:
    got = config(BUILD, limits=limits)
    assert got["mem_limit"] == memory
    assert got["memswap_limit"] == got["mem_limit"]  # equal: no swap on top
    assert got["nano_cpus"] == nano_cpus
    assert isinstance(got["nano_cpus"], int)


def test_process_and_file_limits() -> None:
    got = config(BUILD)
    assert got["pids_limit"] == 256
    [ulimit] = got["ulimits"]
    assert (ulimit.name, ulimit.soft, ulimit.hard) == ("nofile", 4096, 4096)


@pytest.mark.parametrize("step", [INSTALL, BUILD])
def test_locked_down_container(step: Step) -> None:
    got = config(step)
    assert got["cap_drop"] == ["ALL"]
    assert "cap_add" not in got and "privileged" not in got
    assert got["security_opt"] == ["no-new-privileges"]
    assert got["read_only"] is True
    assert list(got["tmpfs"]) == ["/tmp"]
    flags = set(got["tmpfs"]["/tmp"].split(","))
    assert {"rw", "nosuid", "nodev", "size=128m", "mode=1777"} <= flags
    # Docker's tmpfs default is noexec, which breaks native addons that copy their binary
    # to a cache under /tmp before loading it (@swc/core does); the workspace is exec anyway.
    assert "exec" in flags and "noexec" not in flags


def test_workspace_is_the_only_rw_mount_of_a_build_step() -> None:
    got = config(BUILD, workspace=Path("/w/b1"))
    assert got["volumes"] == {
        "/w/b1": {"bind": WORKSPACE, "mode": "rw"},
        "/etc/ssl/certs/ca.crt": {"bind": CA_PATH, "mode": "ro"},
    }


def test_npm_cache_is_mounted_for_network_steps_only() -> None:
    assert config(INSTALL)["volumes"]["/var/kiln/cache/npm"] == {"bind": NPM_CACHE, "mode": "rw"}
    assert "/var/kiln/cache/npm" not in config(BUILD)["volumes"]
    assert not any(v["bind"] == NPM_CACHE for v in config(INSTALL, NO_EXTRAS)["volumes"].values())


@pytest.mark.parametrize("step", [INSTALL, BUILD])
def test_ca_bundle_is_mounted_read_only_only_when_set(step: Step) -> None:
    assert config(step)["volumes"]["/etc/ssl/certs/ca.crt"] == {"bind": CA_PATH, "mode": "ro"}
    binds = [v["bind"] for v in config(step, NO_EXTRAS)["volumes"].values()]
    assert binds == [WORKSPACE]


@pytest.mark.parametrize("step", [INSTALL, BUILD])
def test_no_host_environment_leaks_in(step: Step, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "hunter2-s3cr3t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2-s3cr3t")
    monkeypatch.setenv("PATH", "/host/only/bin")
    monkeypatch.setenv("HOME", "/root/host-home")
    env = config(step)["environment"]
    assert "SECRET_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "hunter2-s3cr3t" not in repr(config(step))
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert env["HOME"] == "/tmp"
    assert env == sandbox_environment(step, OPTIONS)


# ---------------------------------------------------------- sandbox_environment


def test_environment_is_fixed_and_minimal() -> None:
    assert sandbox_environment(BUILD, NO_EXTRAS) == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "CI": "1",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_registry": "https://registry.example/",
        "npm_config_cache": "/tmp/.npm",
        "npm_config_git": "/nonexistent/git-is-disabled",
    }


@pytest.mark.parametrize(("step", "cache"), [(INSTALL, NPM_CACHE), (BUILD, "/tmp/.npm")])
def test_npm_cache_location_follows_the_network(step: Step, cache: str) -> None:
    assert sandbox_environment(step, OPTIONS)["npm_config_cache"] == cache


def test_ca_variables_only_with_a_bundle() -> None:
    with_ca = sandbox_environment(INSTALL, OPTIONS)
    assert with_ca["NODE_EXTRA_CA_CERTS"] == CA_PATH
    assert with_ca["npm_config_cafile"] == CA_PATH
    without = sandbox_environment(INSTALL, NO_EXTRAS)
    assert "NODE_EXTRA_CA_CERTS" not in without and "npm_config_cafile" not in without


# ------------------------------------------------------------------- StepResult


@pytest.mark.parametrize(
    ("exit_code", "oom", "timed_out", "cancelled", "ok"),
    [
        (0, False, False, False, True),
        (1, False, False, False, False),
        (137, True, False, False, False),
        (0, True, False, False, False),
        (0, False, True, False, False),
        (0, False, False, True, False),
        (-1, False, False, False, False),
    ],
)
def test_step_result_ok(
    exit_code: int, oom: bool, timed_out: bool, cancelled: bool, ok: bool
) -> None:
    result = StepResult(exit_code, oom, timed_out, cancelled, seconds=1.0)
    assert result.ok is ok


def test_only_network_steps_are_told_about_the_proxy() -> None:
    install_env = config(INSTALL)["environment"]
    assert install_env["npm_config_https_proxy"] == "http://172.30.213.1:3128"
    assert install_env["https_proxy"] == "http://172.30.213.1:3128"
    assert "npm_config_https_proxy" not in config(BUILD)["environment"]


def test_git_is_disabled_for_every_step() -> None:
    for step in (INSTALL, BUILD):
        assert config(step)["environment"]["npm_config_git"].startswith("/nonexistent")


@pytest.mark.parametrize(("step", "runtime"), [(INSTALL, None), (BUILD, "runsc")])
def test_gvisor_runs_only_steps_without_network(step: Step, runtime: str | None) -> None:
    assert config(step, replace(OPTIONS, runtime="runsc")).get("runtime") == runtime


def test_no_runtime_key_by_default() -> None:
    assert "runtime" not in config(BUILD)


def test_the_engine_keeps_no_log_copy() -> None:
    assert config(BUILD)["log_config"]["Type"] == "none"


# ------------------------------------------------------------ dependency layers

LAYER = Path("/var/kiln/cache/layers/k/node_modules")


def test_a_layer_is_mounted_read_only_with_private_scratch_folders() -> None:
    got = config(BUILD, node_modules=LAYER)
    assert got["volumes"][str(LAYER)] == {"bind": f"{WORKSPACE}/node_modules", "mode": "ro"}
    assert got["volumes"][str(Path("/var/kiln/work/b1"))]["mode"] == "rw"
    scratch = {k: v for k, v in got["tmpfs"].items() if k != "/tmp"}
    assert set(scratch) == {f"{WORKSPACE}/node_modules/{n}" for n in SCRATCH_DIRS}
    for flags in scratch.values():
        assert {"rw", "nosuid", "nodev", "uid=10001", "gid=10001"} <= set(flags.split(","))
    assert not any(v["bind"] == NPM_CACHE for v in got["volumes"].values())


def test_a_step_in_the_apps_folder_runs_there_with_the_layer_at_its_node_modules() -> None:
    got = config(replace(BUILD, workdir="apps/web"), node_modules=LAYER)
    assert got["working_dir"] == f"{WORKSPACE}/apps/web"
    assert got["volumes"][str(LAYER)] == {
        "bind": f"{WORKSPACE}/apps/web/node_modules",
        "mode": "ro",
    }
    assert got["volumes"][str(Path("/var/kiln/work/b1"))]["bind"] == WORKSPACE  # all of it
    scratch = {k for k in got["tmpfs"] if k != "/tmp"}
    assert scratch == {f"{WORKSPACE}/apps/web/node_modules/{n}" for n in SCRATCH_DIRS}


def test_a_layer_never_reaches_a_container_with_network() -> None:
    with pytest.raises(SandboxError):
        config(INSTALL, node_modules=LAYER)


def test_without_a_layer_nothing_is_mounted_at_node_modules() -> None:
    binds = [v["bind"] for v in config(BUILD)["volumes"].values()]
    assert f"{WORKSPACE}/node_modules" not in binds


def test_manager_caches_are_mounted_for_network_steps_only() -> None:
    caches = replace(OPTIONS, manager_caches={"/cache/pnpm": Path("/var/kiln/cache/pnpm")})
    assert config(INSTALL, caches)["volumes"]["/var/kiln/cache/pnpm"] == {
        "bind": "/cache/pnpm",
        "mode": "rw",
    }
    assert "/var/kiln/cache/pnpm" not in config(BUILD, caches)["volumes"]


def test_kilns_environment_choice_is_added_but_cannot_replace_the_sandboxs_own() -> None:
    extra = {
        "PATH": "/opt/kiln/node/24/bin:/usr/local/bin",
        "YARN_REGISTRY": "https://registry.example/",
        "npm_config_registry": "https://elsewhere.example/",
        "HOME": "/root",
    }
    env = sandbox_environment(replace(INSTALL, toolenv=tuple(extra.items())), OPTIONS)
    assert env["PATH"] == "/opt/kiln/node/24/bin:/usr/local/bin"
    assert env["YARN_REGISTRY"] == "https://registry.example/"
    assert env["npm_config_registry"] == OPTIONS.registry
    assert env["HOME"] == "/tmp"


def test_a_fetched_manager_is_mounted_read_only() -> None:
    got = container_config(
        replace(BUILD, tools=Path("/var/kiln/cache/managers/pnpm@9.15.9")),
        build_id="0123456789abcdef",
        limits=LIMITS,
        workspace=Path("/w/b1"),
        options=OPTIONS,
    )
    assert got["volumes"]["/var/kiln/cache/managers/pnpm@9.15.9"] == {
        "bind": "/opt/kiln/fetched",
        "mode": "ro",
    }


# ------------------------------------------------------------ build settings (env)


def test_a_submits_env_reaches_the_build_step_and_kilns_names_win() -> None:
    from orchestrator.builds.plan import build_step

    step = build_step({"scripts": {"build": "vite build"}}, {"VITE_API_URL": "https://x"})
    env = sandbox_environment(replace(step, env=(*step.env, ("HOME", "/evil"))), NO_EXTRAS)
    assert env["VITE_API_URL"] == "https://x"
    assert env["HOME"] == "/tmp"


def test_install_steps_never_carry_a_submits_env() -> None:
    from orchestrator.builds import plan

    install = plan.plan_install({"dependencies": {"react": "^19"}}, {})
    assert install.step.env == ()
    assert plan.lifecycle_step().env == ()
    assert "VITE_API_URL" not in sandbox_environment(install.step, OPTIONS)
