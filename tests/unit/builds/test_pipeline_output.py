"""The pipeline's intake of container output: one cleaning step for every way to the user."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from orchestrator.builds.diagnostics import diagnose
from orchestrator.builds.pipeline import BuildRun
from orchestrator.context import Context
from orchestrator.settings import Settings

COLOURED = [
    "\x1b[36mvite v7.3.8 \x1b[32mbuilding for production...\x1b[39m",
    "\x1b[31mx\x1b[39m Build failed in 20ms",
    '\x1b[31m[PARSE_ERROR] Unexpected closing \x1b[1m"main"\x1b[22m tag\x1b[39m',
    "   \x1b[38;5;246m╭─[\x1b[0m src/App.jsx:8:3 \x1b[38;5;246m]\x1b[0m",
]


class Bus:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def logs(self, _id: str, _phase: str, _stream: str, lines: list[str]) -> None:
        self.lines.extend(lines)


def test_the_tail_and_the_diagnosed_lines_are_as_clean_as_the_stream() -> None:
    ctx = SimpleNamespace(settings=Settings(_env_file=None), bus=Bus())  # type: ignore[call-arg]
    run = BuildRun("0123456789abcdef", cast(Context, ctx))
    run._output("stderr", list(COLOURED))
    shown: list[Any] = [*run.tail, *run.step_output]
    assert not any("\x1b" in line for line in shown), shown
    assert run.tail[0] == "vite v7.3.8 building for production..."
    report = diagnose("build_failed", "x", "\n".join(run.step_output))
    assert report["items"][0]["message"] == 'Unexpected closing "main" tag'
    assert report["items"][0]["file"] == "src/App.jsx"


def test_diagnose_cleans_a_stored_tail_of_an_older_record() -> None:
    report = diagnose("build_failed", "x", "\n".join(COLOURED))
    assert "\x1b" not in repr(report)
    assert report["items"][0]["line"] == 8
