"""The Docker arguments of a dev session's long-lived container. Pure.

It starts from a build step's arguments (``sandbox.container_config``: non-root, no
capabilities, no-new-privileges, read-only root, memory without swap, CPU, pids, open
files, the session's own size-limited workspace, no log driver) with no network at all,
and adds only: Kiln's agent (read-only), the socket folder the preview proxy connects
through, the dev host's name, the app's folders, and an attached stdin whose end stops
the container.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.builds.app_folders import ProjectFolders
from orchestrator.errors import ErrorCode
from orchestrator.records.models import Phase
from orchestrator.sandbox.runner import LABEL_BUILD, WORKSPACE, SandboxOptions, container_config
from orchestrator.sandbox.step import Limits, Step

AGENT_DIR = Path(__file__).resolve().parent / "agent"
AGENT_MOUNT = "/kiln"
RUN_MOUNT = "/run/kiln"
LABEL_DEV = "kiln.dev"
LABEL_PROJECT = "kiln.project"
DEV_PREFIX = "dev-"  # the build label and workspace name of a project's session


class DevHost(NamedTuple):
    """The one host a session's dev server answers to, and the port browsers use."""

    name: str  # dev--{project}.{preview domain}
    port: int


class DevAgent(NamedTuple):
    """Kiln's agent in the session: the host folder of its sockets, and the session's
    revision the workspace holds (the agent counts edits on from it)."""

    run_dir: Path
    revision: int = 0


def session_label(project: str) -> str:
    """The ``kiln.build`` label (and workspace folder name) of a project's session."""
    return f"{DEV_PREFIX}{project}"


def dev_step(app: str = "") -> Step:
    """The dev server: Kiln's agent starting the project's own Vite in the app's folder
    (``app``, relative to the project's top), never with network."""
    return Step(
        "dev",
        Phase.BUILDING,
        ["node", f"{AGENT_MOUNT}/agent.mjs"],
        False,
        ErrorCode.BUILD_FAILED,
        workdir=app,
    )


def _inside(folder: str) -> str:
    return f"{WORKSPACE}/{folder}" if folder else WORKSPACE


def dev_container_config(
    project: str,
    *,
    host: DevHost,
    limits: Limits,
    folders: ProjectFolders,
    agent: DevAgent,
    options: SandboxOptions,
    node_modules: Path | None,
    step: Step | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` of ``project``'s dev session.

    ``folders``: the session's workspace and where its app is and installs. ``step``: the
    dev step as the session's environment equips it (its Node and manager on ``PATH``);
    the image's default Node without one. A layer (``node_modules``) mounts at the app's
    folder, which is its install folder: a workspace member takes no layer."""
    layout = folders.layout
    step = step or dev_step(layout.app)
    if step.network:
        raise ValueError("a dev session's container never has network")
    if step.workdir != layout.app:
        raise ValueError("the dev server runs in the app's folder")
    if node_modules is not None and layout.install != layout.app:
        raise ValueError("a workspace member's session takes no shared layer")
    config = container_config(
        step,
        build_id=session_label(project),
        limits=limits,
        workspace=folders.workspace,
        options=options,
        node_modules=node_modules,
    )
    assert config["network_mode"] == "none"  # project code never runs with network
    config.pop("runtime", None)  # a session has its own runtime (it needs host sockets)
    if options.dev_runtime:
        config["runtime"] = options.dev_runtime
    config["labels"] |= {LABEL_DEV: "1", LABEL_PROJECT: project}
    config["volumes"] |= {
        str(AGENT_DIR): {"bind": AGENT_MOUNT, "mode": "ro"},
        str(agent.run_dir): {"bind": RUN_MOUNT, "mode": "rw"},
    }
    config["environment"] |= {
        "KILN_DEV_HOST": host.name,
        "KILN_DEV_PUBLIC_PORT": str(host.port),
        "KILN_DEV_RUN": RUN_MOUNT,
        # Vite's root; edits name files from the project's top; Vite may serve files
        # (server.fs.allow) from the install folder: a member's workspace root, else the app
        "KILN_DEV_ROOT": _inside(layout.app),
        "KILN_DEV_TOP": WORKSPACE,
        "KILN_DEV_ALLOW": _inside(layout.install),
        "KILN_DEV_REVISION": str(agent.revision),
        "NODE_ENV": "development",
    }
    # The manager holds stdin open; when it dies, stdin ends and the agent exits, and the
    # engine removes the container: a killed worker leaves no session running.
    # (docker-py sets StdinOnce with stdin_open when the container is not detached.)
    config |= {"stdin_open": True, "auto_remove": True}
    return config


def is_session_label(labels: dict[str, str]) -> str | None:
    """The project of a dev session's container (or install step); None for a build's."""
    if labels.get(LABEL_DEV) == "1" and labels.get(LABEL_PROJECT):
        return labels[LABEL_PROJECT]
    build = labels.get(LABEL_BUILD, "")
    return build[len(DEV_PREFIX) :] if build.startswith(DEV_PREFIX) else None
