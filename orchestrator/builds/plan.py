"""The build plan: which steps run, with which commands, limits and network.

Pure functions only; ``sandbox.runner`` turns a ``Step`` into a container, and
``step_error`` turns how it ended into the contract's error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from orchestrator.builds.output_folder import PROBE_STEP
from orchestrator.errors import BuildError, ErrorCode
from orchestrator.project.lockfiles import load_json
from orchestrator.project.npm import OTHER_LOCKFILES, lockfile_in_sync, root_install_scripts
from orchestrator.records.models import Phase
from orchestrator.sandbox.protocol import StepResult
from orchestrator.sandbox.step import Limits, Step

KILLED = 137  # 128 + SIGKILL
NPM_FLAGS = ["--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--include=dev"]


@dataclass
class InstallPlan:
    """How dependencies get installed, and what the user should be told about it."""

    step: Step
    warnings: list[str] = field(default_factory=list)


def plan_install(manifest: Mapping[str, object], lockfiles: Mapping[str, bytes]) -> InstallPlan:
    """Choose ``npm ci`` for an in-sync lockfile, else ``npm install`` with a warning."""
    lock = load_json(lockfiles.get("package-lock.json") or lockfiles.get("npm-shrinkwrap.json"))
    warnings: list[str] = []
    if lock is not None and lockfile_in_sync(manifest, lock):
        argv = ["npm", "ci", *NPM_FLAGS]
    else:
        argv = ["npm", "install", *NPM_FLAGS]
        if lock is not None:
            warnings.append(
                "package-lock.json does not match package.json; resolving with npm install"
            )
        else:
            others = [name for name in OTHER_LOCKFILES if name in lockfiles]
            if others:
                warnings.append(
                    f"{', '.join(others)} found but Kiln installs with npm; "
                    "resolving with npm install"
                )
            else:
                warnings.append("no package-lock.json; resolving dependencies with npm install")
    step = Step(
        "install", Phase.INSTALLING, argv, network=True, failure_code=ErrorCode.INSTALL_FAILED
    )
    return InstallPlan(step, warnings)


def install_fallback(step: Step, output: str) -> tuple[Step, str] | None:
    """After a failed install, the retry that npm's own error suggests (with the reason), if any.

    Exported projects often carry a lockfile that ``npm ci`` rejects as out of sync, or
    peer-dependency ranges that npm 7+ refuses (ERESOLVE) where yarn, pnpm and bun did not.
    """
    if step.argv[:2] == ["npm", "ci"] and ("EUSAGE" in output or "in sync" in output):
        argv = ["npm", "install", *step.argv[2:]]
        return replace(step, argv=argv), "npm ci refused the lockfile; retrying with npm install"
    if "ERESOLVE" in output and "--legacy-peer-deps" not in step.argv:
        argv = [*step.argv, "--legacy-peer-deps"]
        reason = "peer dependency conflict (ERESOLVE); retrying with --legacy-peer-deps"
        return replace(step, argv=argv), reason
    return None


def needs_lifecycle_scripts(manifest: Mapping[str, object], lock_raw: bytes | None) -> bool:
    """True when the project or an installed package has install scripts for ``npm rebuild``.

    npm marks packages with install scripts in the lockfile (``hasInstallScript``); the
    project's own preinstall/install/postinstall (e.g. ``patch-package``) run there too.
    """
    if root_install_scripts(manifest):
        return True
    lock = load_json(lock_raw)
    if lock is None:
        return True  # unknown: run them to be safe
    packages = lock.get("packages")
    if not isinstance(packages, dict):
        return True
    return any(
        isinstance(entry, dict) and entry.get("hasInstallScript") for entry in packages.values()
    )


def lifecycle_step() -> Step:
    """Run the dependencies' install scripts, offline, after an install that skipped them."""
    return Step(
        "scripts",
        Phase.INSTALLING,
        ["npm", "rebuild", "--foreground-scripts", "--no-audit", "--no-fund"],
        network=False,
        failure_code=ErrorCode.INSTALL_FAILED,
    )


def build_step(manifest: Mapping[str, object], env: Mapping[str, str] | None = None) -> Step:
    """The project's own ``build`` script, or ``vite build`` when it has none, with the
    submit's build settings (``env``) in its environment."""
    scripts = manifest.get("scripts")
    if isinstance(scripts, dict) and scripts.get("build"):
        argv = ["npm", "run", "build"]
    else:
        argv = ["npx", "--no-install", "vite", "build"]
    return Step(
        "build",
        Phase.BUILDING,
        argv,
        network=False,
        failure_code=ErrorCode.BUILD_FAILED,
        env=tuple(sorted((env or {}).items())),
    )


def classify_failure(
    step: Step, exit_code: int, *, oom_killed: bool, timed_out: bool, limits: Limits
) -> tuple[ErrorCode, str]:
    """Map how a step's container ended to the contract's (error code, human message)."""
    if timed_out:
        return ErrorCode.TIMEOUT, f"{step.name} exceeded the {limits.timeout_s} s time limit"
    if oom_killed:
        return (
            ErrorCode.OUT_OF_MEMORY,
            f"{step.name} ran out of memory (limit {limits.memory_mb} MB)",
        )
    if exit_code == KILLED:
        # SIGKILL with no OOM recorded by the engine: someone else's `docker kill` or
        # `docker rm -f` (another installation's janitor, an operator), not the project.
        return ErrorCode.SANDBOX_ERROR, f"{step.name} was killed from outside the build (exit 137)"
    what = {
        "install": "npm install",
        "scripts": "dependency install scripts",
        PROBE_STEP: "reading build.outDir",
    }.get(step.name, "the build")
    return step.failure_code, f"{what} failed with exit code {exit_code}"


def mentions_disk_full(lines: Iterable[str]) -> bool:
    """True when a step's output says the disk was full."""
    return any("ENOSPC" in line or "no space left on device" in line.lower() for line in lines)


@dataclass(frozen=True)
class StepBounds:
    """What a step's failure is measured against: its limits, log budget and disk."""

    limits: Limits
    max_log_mb: int
    workspace_mb: int


def step_error(
    step: Step, result: StepResult, output: Iterable[str], *, bounds: StepBounds, disk_full: bool
) -> BuildError | None:
    """The error a step that ended without being cancelled stands for; None if it succeeded.

    ``disk_full``: the workspace has no space left; ``output``: the step's own lines.
    """
    if result.output_overflow:
        return BuildError(
            f"the build wrote more than {bounds.max_log_mb} MB of log output; "
            f"Kiln stopped reading and ended the {step.name} step",
            code=ErrorCode.OUTPUT_TOO_LARGE,
        )
    if result.ok:
        return None
    if disk_full or mentions_disk_full(output):
        return BuildError(
            f"the build filled its {bounds.workspace_mb} MB workspace during {step.name}",
            code=ErrorCode.DISK_FULL,
        )
    code, message = classify_failure(
        step,
        result.exit_code,
        oom_killed=result.oom_killed,
        timed_out=result.timed_out,
        limits=bounds.limits,
    )
    return BuildError(message, code=code, exit_code=result.exit_code)
