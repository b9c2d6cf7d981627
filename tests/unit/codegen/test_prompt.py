"""Unit tests for orchestrator.codegen.prompt: what the model is shown."""

from __future__ import annotations

from orchestrator.builds.diagnostics import diagnose, summary
from orchestrator.codegen.prompt import (
    fix_messages,
    generation_messages,
    relevant_files,
    render_files,
)

FILES = {
    "package.json": b'{"name": "x"}',
    "AGENTS.md": b"# the template\nUse the @/ alias.",
    "package-lock.json": b'{"lockfileVersion": 3}',
    "src/App.tsx": b"export default function App() {}",
    "src/lib/util.ts": b"export const n: number = 'x'",
    "public/logo.png": b"\x89PNG\x00\x01",
}


def test_first_request_has_rules_agents_md_project_and_prompt() -> None:
    system, user = generation_messages("a pomodoro timer", FILES, 100_000)
    assert system["role"] == "system"
    assert "dist/" in system["content"]
    assert "Use the @/ alias." in system["content"]
    assert user["role"] == "user"
    assert "a pomodoro timer" in user["content"]
    assert "=== src/App.tsx\nexport default function App() {}" in user["content"]
    assert "=== AGENTS.md" not in user["content"]  # it is in the system message once
    assert "lockfileVersion" not in user["content"]
    assert "package-lock.json (22 bytes, not shown)" in user["content"]
    assert "public/logo.png (6 bytes, not shown)" in user["content"]


def test_without_agents_md_the_rules_stand_alone() -> None:
    files = {k: v for k, v in FILES.items() if k != "AGENTS.md"}
    system, _user = generation_messages("x", files, 100_000)
    assert "AGENTS.md" not in system["content"]


def test_files_beyond_the_size_bound_are_listed_not_shown() -> None:
    shown = render_files(FILES, None, 60)
    assert shown.startswith("=== package.json")  # the manifest comes first
    assert "src/App.tsx (32 bytes, not shown: prompt size limit)" in shown


def test_fix_request_shows_report_and_only_the_files_it_names() -> None:
    report = diagnose(
        "build_failed", "exit 2", "src/lib/util.ts(1,14): error TS2322: Type 'string' is bad."
    )
    assert relevant_files(FILES, report) == ["package.json", "src/lib/util.ts"]
    _system, user = fix_messages(
        "a timer",
        FILES,
        report,
        error_message="the build failed",
        errors=summary(report),
        max_chars=100_000,
    )
    content = user["content"]
    assert "[type_error] src/lib/util.ts:1:14: TS2322" in content
    assert "=== src/lib/util.ts\nexport const n: number = 'x'" in content
    assert "=== src/App.tsx" not in content
    assert "src/App.tsx" in content  # listed among the others
    assert "a timer" in content


def test_relevant_files_skip_paths_the_project_does_not_have() -> None:
    report = diagnose("build_failed", "x", "src/gone.ts(1,1): error TS2322: Type 'a' is bad.")
    assert relevant_files(FILES, report) == ["package.json"]
