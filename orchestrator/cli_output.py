"""What the ``kiln`` command prints and how it exits (pure, so it is tested on its own).

Exit codes, one table for every command:

====  ===========================================================================
code  meaning
====  ===========================================================================
0     success
1     the build (or generation) ended failed or cancelled; a `doctor` check failed
2     usage error, or input the server refused (a 4xx: invalid input, not found,
      conflict, too large, unsupported media type)
3     the Kiln API could not be reached
4     the server is busy or cannot take work now (429 queue full, 503, 507 disk
      full): try again later
5     the server failed (a 5xx other than the above)
====  ===========================================================================

Tables go to a terminal as boxes that fit its width; piped, they are plain
tab-separated lines with a header, never wrapped or cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from rich.console import Console
from rich.table import Table


class ExitCode(IntEnum):
    """The ``kiln`` command's exit codes (see the module docstring and the README)."""

    OK = 0
    BUILD_FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    BUSY = 4
    SERVER_ERROR = 5


BUSY_STATUSES = frozenset({429, 503, 507})


def exit_code_for(http_status: int) -> ExitCode:
    """The exit code of an API error answer."""
    if http_status in BUSY_STATUSES:
        return ExitCode.BUSY
    if 400 <= http_status < 500:
        return ExitCode.USAGE
    return ExitCode.SERVER_ERROR


def exit_code_of_build(body: dict[str, Any]) -> ExitCode:
    """0 for a succeeded build, 1 for any other end."""
    return ExitCode.OK if body.get("status") == "succeeded" else ExitCode.BUILD_FAILED


# Free text that may wrap onto more lines on a narrow terminal; every other column (ids,
# statuses, times, numbers) keeps its full width on one line.
GIVE_WAY = frozenset({"project", "error", "worker", "last heartbeat"})


def print_table(console: Console, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table: boxed on a terminal (fitting it), tab-separated lines when piped."""
    if not console.is_terminal:
        console.file.write("\t".join(columns) + "\n")
        for row in rows:
            console.file.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")
        return
    # No borders: the room goes to the data. Only free text gives way on a narrow terminal.
    table = Table(box=None, pad_edge=False, collapse_padding=True, header_style="bold")
    for index, name in enumerate(columns):
        widest = max([len(name), *(len(row[index]) for row in rows)])
        shrinks = name in GIVE_WAY
        table.add_column(
            name,
            no_wrap=not shrinks,
            overflow="ellipsis",
            min_width=None if shrinks else widest,
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)


def seconds(ms: int | None) -> str:
    """``2.2`` from 2200 ms; empty when unknown."""
    return "" if ms is None else f"{ms / 1000:.1f}"


def build_lines(body: dict[str, Any]) -> list[tuple[str, str]]:
    """``kiln status``: the fields that say something (empty ones left out), then the error
    and its diagnosis."""
    lines: list[tuple[str, str]] = []
    queue = body.get("queue") or {}
    fields: list[tuple[str, Any]] = [
        ("id", body.get("id")),
        ("project", body.get("project")),
        ("template", body.get("template")),
        ("status", body.get("status")),
        ("phase", body.get("phase")),
        ("created", body.get("created_at")),
        ("place in line", queue.get("position")),
        ("queued s", seconds(body.get("queued_ms"))),
        ("ran s", seconds(body.get("duration_ms"))),
        ("attempts", body.get("attempts") if (body.get("attempts") or 0) > 1 else None),
        ("reused from", body.get("reused_from")),
        ("env", ", ".join(body.get("env") or [])),
        ("preview", body.get("preview_url")),
    ]
    lines.extend((name, str(value)) for name, value in fields if value not in (None, "", []))
    error = body.get("error")
    if error:
        lines.append(("error", f"{error.get('code')}: {error.get('message')}"))
        for item in (error.get("diagnostics") or {}).get("items", []):
            lines.append(("diagnosis", diagnosis_line(item)))
        omitted = (error.get("diagnostics") or {}).get("omitted")
        if omitted:
            lines.append(("diagnosis", f"… and {omitted} more"))
    return lines


def diagnosis_line(item: dict[str, Any]) -> str:
    """``[syntax] src/App.jsx:8 Unexpected closing "main" tag``."""
    where = ":".join(str(p) for p in (item.get("file"), item.get("line")) if p)
    return f"[{item.get('category')}] {where + ' ' if where else ''}{item.get('message')}"
