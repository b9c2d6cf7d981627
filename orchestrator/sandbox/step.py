"""What one container run is: a command in a phase, with its limits (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ErrorCode, InputError
from orchestrator.records.models import Phase


@dataclass(frozen=True)
class Limits:
    """Resource limits of one build's containers."""

    timeout_s: int
    memory_mb: int
    cpus: float


def clamp_limits(
    requested: Mapping[str, float | int | None] | None, default: Limits, maximum: Limits
) -> Limits:
    """Apply a submit's requested limits: missing means default, above maximum means maximum."""
    requested = requested or {}

    def pick(name: str) -> float:
        value = requested.get(name)
        if value is None:
            return float(getattr(default, name))
        if value <= 0:
            raise InputError(f"limits.{name} must be positive")
        return min(float(value), float(getattr(maximum, name)))

    return Limits(
        timeout_s=int(pick("timeout_s")), memory_mb=int(pick("memory_mb")), cpus=pick("cpus")
    )


@dataclass(frozen=True)
class Step:
    """One container run: a command in a phase, with or without network."""

    name: str
    phase: Phase
    argv: list[str]
    network: bool
    failure_code: ErrorCode
    # The submit's build settings (project/build_env.py); only the build step has any.
    env: tuple[tuple[str, str], ...] = ()
    # Kiln's own choice of Node and package manager (builds/managers.py), never the
    # project's: PATH first to the chosen pair, a manager's registry names. Laid under the
    # sandbox's own registry, proxy and CA names, which win.
    toolenv: tuple[tuple[str, str], ...] = ()
    # A package manager fetched for packageManager's exact version, mounted read-only.
    tools: Path | None = None
    # The folder inside the workspace the step runs in ("front", "apps/web"; "" is the
    # top): the app's, or its workspace root's (project/app_folder.py). Checked at submit.
    workdir: str = ""
    # (name, text): a file the container writes into its own /tmp before the command (a
    # yarn 2+ rc file Kiln makes, builds/managers.py); the name is a plain file name.
    tmp_file: tuple[str, str] | None = None


@dataclass(frozen=True)
class Toolchain:
    """What steps run with (the image, its Node, the platform): with a lockfile, a layer's key."""

    image_id: str
    node_version: str
    platform: str
