"""The seam between a build and whatever runs its steps: ``StepRunner`` and ``StepResult``.

``runner.Sandbox`` runs steps as containers on a Docker engine; ``fake.FakeSandbox`` runs
scripted results in-process for unit tests (as httpx's ``MockTransport`` stands in for
the network). The pipeline, the layer provider and the warm start talk only to this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.project.environment import Offer
from orchestrator.sandbox.step import Limits, Step, Toolchain

OutputSink = Callable[[str, list[str]], None]


@dataclass(frozen=True)
class StepResult:
    """How a step's container ended."""

    exit_code: int
    oom_killed: bool
    timed_out: bool
    cancelled: bool
    seconds: float
    output_bytes: int = 0
    output_overflow: bool = False  # stopped for writing more than its output budget

    @property
    def ok(self) -> bool:
        """True when the step exited 0 on its own."""
        stopped = self.timed_out or self.cancelled or self.oom_killed or self.output_overflow
        return self.exit_code == 0 and not stopped


class StepRunner(Protocol):
    """Runs a build's steps; raises ``SandboxError`` when the runner itself fails."""

    def run_step(
        self,
        step: Step,
        *,
        build_id: str,
        limits: Limits,
        workspace: Path,
        on_output: OutputSink,
        should_cancel: Callable[[], bool],
        max_output_bytes: int | None = None,
        node_modules: Path | None = None,
    ) -> StepResult:
        """Run ``step`` in ``workspace`` to its end, streaming lines to ``on_output``."""
        ...

    def remove_build_containers(self, build_id: str) -> int:
        """Remove whatever is left running of ``build_id``; returns how many."""
        ...

    def prepare_dir(self, folder: Path) -> None:
        """Hand a host folder to the user the steps run as."""
        ...

    def toolchain(self) -> Toolchain:
        """What the steps run with (image id, Node version, platform): part of cache keys."""
        ...

    def offer(self) -> Offer:
        """The Node majors and package managers the steps can run with (the image's)."""
        ...

    def bun_default_trusted(self) -> frozenset[str]:
        """The dependencies whose scripts the image's bun trusts by default (its list)."""
        ...
