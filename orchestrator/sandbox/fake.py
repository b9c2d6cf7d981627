"""A ``StepRunner`` that runs nothing: scripted step results, for tests (no Docker).

Modelled on httpx's ``MockTransport``: hand ``FakeSandbox`` a handler that gets each
``StepCall`` and returns a ``Script`` (what the step "did"), or a table of scripts by step
name with ``scripted``::

    sandbox = FakeSandbox(scripted({"build": Script(writes=DIST_INDEX)}))
    sandbox = FakeSandbox(scripted({"install": [Script(exit_code=1, lines=["EUSAGE"]), OK]}))

A script can exit non-zero, print lines, be OOM-killed, time out, be cancelled, overflow
the output budget, and write files into the workspace (a ``dist/`` folder, a lockfile).
Every call is recorded in ``calls``, so tests can see which steps ran where.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.project.environment import Manager, Offer
from orchestrator.sandbox.protocol import OutputSink, StepResult
from orchestrator.sandbox.step import Limits, Step, Toolchain

FAKE_TOOLCHAIN = Toolchain(image_id="sha256:fake", node_version="22.0.0", platform="linux/fake")
FAKE_OFFER = Offer(
    node={20: "20.0.0", 22: "22.0.0", 24: "24.0.0", 26: "26.0.0"},
    managers={
        Manager.NPM: "10.0.0",
        Manager.PNPM: "10.0.0",
        Manager.YARN_CLASSIC: "1.22.22",
        Manager.YARN_BERRY: "4.0.0",
        Manager.BUN: "1.0.0",
    },
)
DIST_INDEX: Mapping[str, str] = {"dist/index.html": "<!doctype html><p>built</p>"}


@dataclass(frozen=True)
class StepCall:
    """One step the fake was asked to run."""

    step: Step
    build_id: str
    workspace: Path
    node_modules: Path | None
    limits: Limits

    @property
    def name(self) -> str:
        """The step's name (install, build, layer-install, ...)."""
        return self.step.name


@dataclass(frozen=True)
class Script:
    """What one step does in the fake: its output, how it ends, the files it writes."""

    exit_code: int = 0
    lines: Sequence[str] = ()
    stream: str = "stdout"
    oom_killed: bool = False
    timed_out: bool = False
    cancelled: bool = False
    seconds: float = 0.01
    # relative to the step's folder (the workspace, or its workdir in it)
    writes: Mapping[str, str | bytes] = field(default_factory=dict)
    effect: Callable[[StepCall], None] | None = None  # anything else, e.g. set a cancel flag


OK = Script()
Handler = Callable[[StepCall], Script]


def scripted(table: Mapping[str, Script | Sequence[Script]], default: Script = OK) -> Handler:
    """A handler from scripts by step name; a sequence is used one per call (the last repeats)."""
    used: dict[str, int] = {}

    def handle(call: StepCall) -> Script:
        entry = table.get(call.name, default)
        if isinstance(entry, Script):
            return entry
        index = used.get(call.name, 0)
        used[call.name] = index + 1
        return entry[min(index, len(entry) - 1)]

    return handle


class FakeSandbox:
    """Runs steps by asking ``handler`` what they do; records every call."""

    def __init__(
        self,
        handler: Handler | None = None,
        toolchain: Toolchain = FAKE_TOOLCHAIN,
        offer: Offer = FAKE_OFFER,
        bun_defaults: frozenset[str] = frozenset(),
    ) -> None:
        self.handler = handler or scripted({})
        self._toolchain = toolchain
        self._offer = offer
        self._bun_defaults = bun_defaults
        self.calls: list[StepCall] = []
        self.removed: list[str] = []  # build ids whose containers were swept

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
        """Play the step's script: write its files, print its lines, end as it says."""
        call = StepCall(step, build_id, workspace, node_modules, limits)
        self.calls.append(call)
        script = self.handler(call)
        for relative, content in script.writes.items():
            target = workspace / step.workdir / relative  # as the container's cwd would
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        if script.effect is not None:
            script.effect(call)
        sent, overflow = self._print(script, on_output, max_output_bytes)
        return StepResult(
            exit_code=137 if overflow else script.exit_code,
            oom_killed=script.oom_killed,
            timed_out=script.timed_out,
            cancelled=script.cancelled or should_cancel(),
            seconds=script.seconds,
            output_bytes=sent,
            output_overflow=overflow,
        )

    @staticmethod
    def _print(script: Script, on_output: OutputSink, budget: int | None) -> tuple[int, bool]:
        """Send the script's lines as the real runner would: stop past the output budget."""
        sent, lines = 0, []
        overflow = False
        for line in script.lines:
            sent += len(line.encode()) + 1
            if budget is not None and sent > budget:
                overflow = True
                break
            lines.append(line)
        if lines:  # one chunk, as the real runner hands over what one read brought
            on_output(script.stream, lines)
        return sent, overflow

    def remove_build_containers(self, build_id: str) -> int:
        """Nothing runs on after a fake step; remember that the sweep was asked for."""
        self.removed.append(build_id)
        return 0

    def prepare_dir(self, folder: Path) -> None:
        """Folders need no handing over: the fake's steps run as this process."""

    def toolchain(self) -> Toolchain:
        """The fixed toolchain given at construction."""
        return self._toolchain

    def offer(self) -> Offer:
        """The fixed offer given at construction (every Node major and manager)."""
        return self._offer

    def bun_default_trusted(self) -> frozenset[str]:
        """The fixed default list given at construction (none unless told)."""
        return self._bun_defaults

    def ran(self) -> list[str]:
        """The names of the steps run so far, in order."""
        return [call.name for call in self.calls]
