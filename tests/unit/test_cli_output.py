from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.cli_output import ExitCode, build_lines, exit_code_for, print_table


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 2), (404, 2), (409, 2), (413, 2), (415, 2), (429, 4), (503, 4), (507, 4), (500, 5)],
)
def test_api_errors_map_to_the_documented_exit_codes(status: int, code: int) -> None:
    assert exit_code_for(status) == code


def test_the_exit_code_table_is_the_one_in_the_readme() -> None:
    from orchestrator.settings import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in readme, code


FAILED = {
    "id": "0123456789abcdef",
    "project": "demo",
    "template": None,
    "status": "failed",
    "phase": "done",
    "created_at": "2026-12-01T20:00:00.000Z",
    "queued_ms": 87000,
    "duration_ms": 2200,
    "attempts": 1,
    "reused_from": None,
    "env": [],
    "preview_url": None,
    "queue": {"position": None, "waited_ms": 87000},
    "error": {
        "code": "build_failed",
        "message": 'src/App.jsx:8: Unexpected closing "main" tag (exit code 1)',
        "diagnostics": {
            "items": [
                {
                    "category": "syntax",
                    "file": "src/App.jsx",
                    "line": 8,
                    "message": 'Unexpected closing "main" tag',
                }
            ],
            "omitted": 0,
        },
    },
}


def test_status_shows_the_diagnosis_and_leaves_out_empty_fields() -> None:
    lines = dict(build_lines(FAILED))
    assert lines["diagnosis"] == '[syntax] src/App.jsx:8 Unexpected closing "main" tag'
    assert lines["queued s"] == "87.0" and lines["ran s"] == "2.2"
    for empty in ("template", "reused from", "env", "preview", "attempts", "place in line"):
        assert empty not in lines


ROWS = [
    [
        "0123456789abcdef",
        "a-rather-long-project-name",
        "succeeded",
        "installing",
        "12-01 20:00:00",
        "87.0",
        "2.2",
        "x" * 60,
    ]
]
COLUMNS = ("id", "project", "status", "phase", "created", "queued s", "ran s", "error")


def test_piped_tables_are_plain_tab_separated_lines_never_cut() -> None:
    buffer = io.StringIO()
    print_table(Console(file=buffer, width=80), COLUMNS, ROWS)
    assert buffer.getvalue().splitlines() == ["\t".join(COLUMNS), "\t".join(ROWS[0])]


def test_a_terminal_table_fits_80_columns_and_keeps_status_words_whole() -> None:
    buffer = io.StringIO()
    print_table(
        Console(file=buffer, width=80, force_terminal=True, color_system=None), COLUMNS, ROWS
    )
    header, row = buffer.getvalue().splitlines()
    assert max(len(header), len(row)) <= 80
    for whole in ("0123456789abcdef", "succeeded", "installing", "87.0", "2.2"):
        assert whole in row.split(), (whole, row)
    assert " 12-01 20:00:00 " in row
    assert "ran s" in header and "…" in row  # the free text gave way, nothing else
