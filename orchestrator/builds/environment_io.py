"""The pipeline's side of build environments: read the project's files, decide, key layers.

The one place the pipeline asks ``project/environment.py`` for a decision, so moving onto a
restructured pipeline means moving these three calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.project.environment import (
    ENVIRONMENT_FILES,
    Environment,
    Offer,
    choose_environment,
)
from orchestrator.sandbox.step import Toolchain


def read_environment(
    workspace: Path, offer: Offer, manifest: Mapping[str, Any], requested_node: object
) -> Environment:
    """Choose the environment of the project in ``workspace`` (its top-level files)."""
    files = {}
    for name in ENVIRONMENT_FILES:
        path = workspace / name
        if path.is_file() and not path.is_symlink():
            files[name] = path.read_bytes()
    return choose_environment(offer, manifest, files, requested_node)


def environment_toolchain(base: Toolchain, env: Environment | None) -> Toolchain:
    """The layer toolchain of a build: the image's, with the build's own Node and manager, so
    no layer is shared across Node majors or package managers."""
    if env is None:
        return base
    node = f"{env.node.version}+{env.manager.manager.value}@{env.manager.version}"
    return dataclasses.replace(base, node_version=node)
