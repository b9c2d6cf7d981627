"""Unit tests for orchestrator.builds.diagnostics, on logs of real failed Kiln builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.builds.diagnostics import (
    MAX_ITEMS,
    MAX_MESSAGE_CHARS,
    diagnose,
    is_package,
    relative_path,
    summary,
)

LOGS = Path(__file__).parent / "logs"
NODIST = (
    "the build finished but wrote no dist/ folder (Kiln publishes dist/; check build.outDir "
    "in the Vite config)"
)


def log(name: str) -> str:
    return (LOGS / f"{name}.log").read_text()


@pytest.mark.parametrize(
    ("name", "code", "category", "file", "line", "needle"),
    [
        ("ts_type", "build_failed", "type_error", "src/lib/bad.ts", 1, "TS2322"),
        ("ts_syntax", "build_failed", "syntax", "src/lib/bad.ts", 1, "TS1109"),
        ("ts_missing_dep", "build_failed", "missing_dependency", "src/lib/bad.ts", 1, "confetti"),
        ("vite_missing_dep", "build_failed", "missing_dependency", "src/App.jsx", None, "confetti"),
        ("vite_missing_rel", "build_failed", "unresolved_import", "src/App.jsx", 1, "./Foo"),
        ("vite_syntax", "build_failed", "syntax", "src/App.jsx", 1, "closing tag"),
        ("vanilla_syntax", "build_failed", "syntax", "src/main.js", 2, "Unexpected token"),
        ("node_missing", "build_failed", "missing_dependency", "build.js", None, "left-pad-kiln"),
        ("node_syntax", "build_failed", "syntax", "build.js", 2, "SyntaxError"),
        ("npm_404", "install_failed", "missing_dependency", "package.json", None, "4f1c@1.0.0"),
    ],
)
def test_real_logs_give_one_precise_item(
    name: str, code: str, category: str, file: str, line: int | None, needle: str
) -> None:
    report = diagnose(code, "the build failed with exit code 1", log(name))
    assert report["category"] == category
    assert len(report["items"]) == 1, report["items"]
    item = report["items"][0]
    assert (item["category"], item["file"], item["line"]) == (category, file, line)
    assert needle in item["message"]
    assert report["omitted"] == 0


def test_no_dist_is_a_config_problem() -> None:
    report = diagnose("build_failed", NODIST, log("node_nodist"))
    assert report["category"] == "config"
    assert report["items"][0]["message"] == NODIST


@pytest.mark.parametrize("code", ["timeout", "out_of_memory"])
def test_limits_are_their_own_category(code: str) -> None:
    report = diagnose(code, "build exceeded its limit", "vite v8 building...\n")
    assert report["category"] == code
    assert report["items"][0]["message"] == "build exceeded its limit"


def test_heap_exhaustion_in_the_log_is_out_of_memory() -> None:
    text = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
    assert diagnose("build_failed", "exit code 134", text)["category"] == "out_of_memory"


def test_unknown_failure_keeps_the_last_error_line() -> None:
    text = "step one\nsomething broke: Error: disk is sad\nbye\n[kiln] failed: x\n"
    report = diagnose("build_failed", "exit 1", text)
    assert report["items"] == [
        {
            "category": "other",
            "file": None,
            "line": None,
            "column": None,
            "message": "something broke: Error: disk is sad",
        }
    ]


def test_duplicates_collapse_and_items_are_bounded() -> None:
    lines = [f"src/a{i}.ts({i},1): error TS2322: Type 'x' is wrong." for i in range(1, 30)]
    lines += lines  # every error twice, as tsc -b can print them
    report = diagnose("build_failed", "exit 2", "\n".join(lines))
    assert len(report["items"]) == MAX_ITEMS
    assert report["omitted"] == 29 - MAX_ITEMS
    assert "and 19 more" in summary(report)


def test_long_messages_are_cut() -> None:
    text = "src/a.ts(1,1): error TS2322: " + "y" * 5000
    message = diagnose("build_failed", "exit 2", text)["items"][0]["message"]
    assert len(message) == MAX_MESSAGE_CHARS
    assert message.endswith("…")


def test_fingerprint_ignores_line_numbers_but_not_the_error() -> None:
    first = diagnose("build_failed", "x", "src/a.ts(3,1): error TS2322: Type 'a' is wrong.")
    moved = diagnose("build_failed", "x", "src/a.ts(9,7): error TS2322: Type 'a' is wrong.")
    other = diagnose("build_failed", "x", "src/a.ts(3,1): error TS2322: Type 'b' is wrong.")
    assert first["fingerprint"] == moved["fingerprint"]
    assert first["fingerprint"] != other["fingerprint"]
    assert len(first["fingerprint"]) == 16


def test_kiln_notes_are_not_diagnosed() -> None:
    text = "[kiln] src/a.ts(3,1): error TS2322: forged by nobody\n"
    assert diagnose("build_failed", "exit 1", text)["items"][0]["file"] is None


def test_pretty_tsc_and_esbuild_formats() -> None:
    text = (
        "src/main.ts:4:2 - error TS2554: Expected 1 arguments, but got 0.\n"
        '/workspace/src/x.ts:2:13: ERROR: Could not resolve "lodash"\n'
        'npm error Missing script: "build"\n'
    )
    items = diagnose("build_failed", "exit 1", text)["items"]
    assert [(i["category"], i["file"], i["line"]) for i in items] == [
        ("type_error", "src/main.ts", 4),
        ("missing_dependency", "src/x.ts", 2),
        ("config", "package.json", None),
    ]


@pytest.mark.parametrize(
    ("spec", "package"),
    [("react", True), ("@scope/pkg", True), ("./Foo", False), ("../x", False), ("@/lib", False)],
)
def test_is_package(spec: str, package: bool) -> None:
    assert is_package(spec) is package


def test_relative_path_strips_the_sandbox_prefix() -> None:
    assert relative_path("/workspace/src/App.jsx") == "src/App.jsx"
    assert relative_path("file:///workspace/build.js") == "build.js"
    assert relative_path("src/a.ts") == "src/a.ts"
    assert relative_path(None) is None
