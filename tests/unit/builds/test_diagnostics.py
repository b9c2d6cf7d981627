"""Unit tests for orchestrator.builds.diagnostics, on logs of real failed Kiln builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.builds.diagnostics import (
    MAX_ITEMS,
    MAX_MESSAGE_CHARS,
    diagnose,
    headline,
    is_package,
    relative_path,
    summary,
)
from orchestrator.builds.output_folder import candidates, missing_output_message
from orchestrator.project.frameworks import detect

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
        (
            "npm_404",
            "install_failed",
            "missing_dependency",
            "package.json",
            None,
            "kiln-no-such-package-4f1c",
        ),
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


def test_a_missing_output_names_the_framework_and_the_file_to_change() -> None:
    framework = detect(
        {"devDependencies": {"@sveltejs/kit": "2", "@sveltejs/adapter-auto": "3"}}, []
    )
    message = missing_output_message(candidates("dist", framework), framework)
    noisy = "vite v6 building SSR bundle...\nerror: something unrelated failed\n"
    report = diagnose("build_failed", message, noisy)
    assert report["category"] == "config"
    first = report["items"][0]
    assert (first["file"], first["message"]) == ("svelte.config.js", message)
    assert "adapter-static" in first["message"] and "SvelteKit" in first["message"]
    assert headline(message, report) == message


def test_a_missing_output_without_a_framework_points_at_package_json() -> None:
    message = missing_output_message(candidates(None, None), None)
    assert diagnose("build_failed", message, "")["items"][0]["file"] == "package.json"


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


# Real runs of npm 11, pnpm 9.15, yarn 1.22 and bun 1.4 on this host (the host's temporary
# project folder replaced by /workspace and ~/.npm by /cache/npm, as the sandbox shows them).
NOT_FOUND = "package kiln-no-such-package-7d2e does not exist in the npm registry"
NO_VERSIONS = "package react-dmo has no published versions"
NO_MATCH = "no published version of react matches ^99.0.0"
ENGINE = "requires Node >=99 (engines in package.json)"
PEER = 'react-day-picker@8.10.1 needs react@"^16.8.0 || ^17.0.0 || ^18.0.0"'


@pytest.mark.parametrize(
    ("name", "category", "needle"),
    [
        ("npm_enoversions", "missing_dependency", NO_VERSIONS),
        ("pnpm_enoversions", "missing_dependency", NO_VERSIONS),
        ("yarn_enoversions", "missing_dependency", NO_VERSIONS),
        ("bun_enoversions", "missing_dependency", "no published version of react-dmo matches"),
        ("npm11_e404", "missing_dependency", NOT_FOUND),
        ("pnpm_e404", "missing_dependency", NOT_FOUND),
        ("yarn_e404", "missing_dependency", NOT_FOUND),
        ("bun_e404", "missing_dependency", NOT_FOUND),
        ("npm_etarget", "missing_dependency", NO_MATCH),
        ("pnpm_etarget", "missing_dependency", NO_MATCH),
        ("yarn_etarget", "missing_dependency", NO_MATCH),
        ("bun_etarget", "missing_dependency", NO_MATCH),
        ("npm_ebadengine", "config", ENGINE),
        ("pnpm_ebadengine", "config", ENGINE),
        ("yarn_ebadengine", "config", ENGINE),
        ("npm_eresolve", "config", PEER),
        ("pnpm_eresolve", "config", PEER),
    ],
)
def test_package_manager_failures_give_one_item_worded_alike(
    name: str, category: str, needle: str
) -> None:
    report = diagnose("install_failed", "npm install failed with exit code 1", log(name))
    assert [i["category"] for i in report["items"]] == [category], report["items"]
    item = report["items"][0]
    assert needle in item["message"]
    assert item["file"] == "package.json"
    assert "_logs" not in item["message"] and "2026-" not in item["message"]


def test_the_same_mistake_has_one_fingerprint_whichever_tool_reports_it() -> None:
    prints = {
        diagnose("install_failed", "x", log(f"{tool}_etarget"))["fingerprint"]
        for tool in ("npm", "pnpm", "yarn", "bun")
    }
    assert len(prints) == 1


def test_a_retry_of_the_same_source_has_the_same_fingerprint() -> None:
    first = log("npm_enoversions")
    second = first.replace("2026-12-01T20_09_56_569Z", "2026-12-02T08_11_02_003Z")
    assert first != second
    assert diagnose("install_failed", "x", first) == diagnose("install_failed", "x", second)


def test_no_timestamp_cache_path_or_random_id_reaches_a_fallback_item() -> None:
    log_text = (
        "npm error something nobody recognises at 2026-12-01T20:09:56.569Z\n"
        "npm error while reading /cache/npm/_cacache/index-v5/3f/9a1b2c3d4e5f60718293a4b5c6\n"
        "npm error A complete log of this run can be found in: "
        "/cache/npm/_logs/2026-12-01T20_09_56_569Z-debug-0.log\n"
    )
    again = log_text.replace("20_09_56_569Z", "21_00_00_000Z").replace("20:09:56", "21:00:00")
    report = diagnose("install_failed", "npm install failed with exit code 1", log_text)
    message = report["items"][0]["message"]
    assert "A complete log" not in message
    assert "2026" not in message and "/cache/" not in message
    assert report["fingerprint"] == diagnose("install_failed", "x", again)["fingerprint"]


def test_the_headline_leads_with_the_first_diagnosis_and_keeps_the_exit_code() -> None:
    message = "the build failed with exit code 1"
    report = diagnose("build_failed", message, log("vite_syntax"))
    first = report["items"][0]
    assert headline(message, report) == (
        f"src/App.jsx:{first['line']}: {first['message']} (the build failed with exit code 1)"
    )
    install = diagnose(
        "install_failed", "npm install failed with exit code 1", log("npm_enoversions")
    )
    assert headline("npm install failed with exit code 1", install).startswith(
        "package.json: package react-dmo has no published versions"
    )


def test_the_headline_of_a_timeout_is_its_message() -> None:
    message = "build exceeded the 600 s time limit"
    assert headline(message, diagnose("timeout", message, "")) == message
    assert headline(message, None) == message


def test_a_guessed_diagnosis_is_no_headline() -> None:
    message = "npm install failed with exit code 1"
    report = diagnose("install_failed", message, "npm error code E999\nnpm error odd")
    assert report["category"] == "other"
    assert headline(message, report) == message
