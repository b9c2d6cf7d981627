"""The scripted step runner that unit tests use in place of Docker."""

from __future__ import annotations

from pathlib import Path

from orchestrator.records.models import Phase
from orchestrator.sandbox.fake import FAKE_TOOLCHAIN, OK, FakeSandbox, Script, scripted
from orchestrator.sandbox.protocol import StepResult, StepRunner
from orchestrator.sandbox.step import Limits, Step

LIMITS = Limits(60, 512, 1.0)
BUILD = Step("build", Phase.BUILDING, ["npm", "run", "build"], False, "build_failed")


def run(
    sandbox: FakeSandbox,
    workspace: Path,
    *,
    budget: int | None = None,
    cancel: bool = False,
) -> tuple[StepResult, list[tuple[str, list[str]]]]:
    printed: list[tuple[str, list[str]]] = []
    result = sandbox.run_step(
        BUILD,
        build_id="b1",
        limits=LIMITS,
        workspace=workspace,
        on_output=lambda stream, lines: printed.append((stream, lines)),
        should_cancel=lambda: cancel,
        max_output_bytes=budget,
    )
    return result, printed


def test_it_is_a_step_runner(tmp_path: Path) -> None:
    runner: StepRunner = FakeSandbox()
    assert runner.toolchain() == FAKE_TOOLCHAIN
    assert runner.remove_build_containers("b1") == 0


def test_a_script_prints_writes_and_ends_as_told(tmp_path: Path) -> None:
    script = Script(exit_code=2, lines=["a", "b"], stream="stderr", writes={"dist/x.txt": "x"})
    sandbox = FakeSandbox(scripted({"build": script}))
    result, printed = run(sandbox, tmp_path)
    assert (result.exit_code, result.ok) == (2, False)
    assert printed == [("stderr", ["a", "b"])]
    assert (tmp_path / "dist" / "x.txt").read_text() == "x"
    assert result.output_bytes == 4
    assert sandbox.ran() == ["build"] and sandbox.calls[0].workspace == tmp_path


def test_a_sequence_is_played_one_per_call_and_the_last_repeats(tmp_path: Path) -> None:
    sandbox = FakeSandbox(scripted({"build": [Script(exit_code=1), OK]}))
    codes = [run(sandbox, tmp_path)[0].exit_code for _ in range(3)]
    assert codes == [1, 0, 0]


def test_past_the_output_budget_the_step_is_stopped(tmp_path: Path) -> None:
    sandbox = FakeSandbox(scripted({"build": Script(lines=["x" * 9] * 5)}))
    result, printed = run(sandbox, tmp_path, budget=25)
    assert result.output_overflow and not result.ok
    assert printed == [("stdout", ["x" * 9] * 2)]


def test_a_cancel_flag_seen_during_the_step_cancels_it(tmp_path: Path) -> None:
    result, _ = run(FakeSandbox(), tmp_path, cancel=True)
    assert result.cancelled and not result.ok
