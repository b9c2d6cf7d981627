"""The messages sent to the model: Kiln's rules, the template's AGENTS.md, the project, the task.

Pure. A first request shows the whole project (text files, bounded in size); a fix
request shows the error report and only the files it names, plus package.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.project.input import Files
from orchestrator.project.npm import OTHER_LOCKFILES

AGENTS_FILE = "AGENTS.md"
HIDDEN_FROM_LISTING = frozenset({"package-lock.json", "npm-shrinkwrap.json", *OTHER_LOCKFILES})
ALWAYS_RELEVANT = ("package.json",)

RULES = """\
You write and edit web front-end projects (Vite, usually React + TypeScript) that Kiln builds \
and serves as a static preview.

How Kiln builds a project:
- the project's package manager (npm, pnpm, yarn or bun, from its lockfile; npm when it has \
none) installs package.json's dependencies with network access, install scripts disabled; \
then the `build` script of package.json (`vite build` when there is none) with NO network. \
The output must be written to dist/ (or the folder `build.outDir` names).
- Only packages listed in package.json are available. To use a new package, add it to \
package.json (dependencies) with a version range that exists on npm; never edit a lockfile.
- The result is static files: no server code, no environment secrets, no runtime network access \
to anything but public URLs the app itself fetches in the browser.

How to answer:
- Reply with JSON matching the schema: `files` (each a relative path and its COMPLETE new \
content; never a diff, never "..." placeholders), `delete` (relative paths to remove) and a \
short `summary`.
- Only include files you create or change. Keep every other file as it is.
- Make the project build without errors: every import must resolve, TypeScript must type-check \
(the build may run `tsc -b` with strict settings), JSX must be valid.
- Follow the project's conventions described below."""


def is_text(data: bytes) -> bool:
    """True for UTF-8 text without NUL bytes (what a model can read and write)."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _order(path: str) -> tuple[int, str]:
    # Manifest and entry points first, then sources, then the rest.
    if path == "package.json":
        return (0, path)
    if "/" not in path:
        return (1, path)
    if path.startswith("src/"):
        return (2, path)
    return (3, path)


def render_files(files: Files, paths: list[str] | None, max_chars: int) -> str:
    """Show files to the model: full text while it fits ``max_chars``, then paths only."""
    chosen = sorted(paths if paths is not None else files, key=_order)
    shown: list[str] = []
    listed: list[str] = []
    used = 0
    for path in chosen:
        data = files.get(path)
        if data is None or path == AGENTS_FILE:
            continue
        if path in HIDDEN_FROM_LISTING or not is_text(data):
            listed.append(f"{path} ({len(data)} bytes, not shown)")
            continue
        text = data.decode("utf-8")
        block = f"=== {path}\n{text}\n"
        if used + len(block) > max_chars:
            listed.append(f"{path} ({len(data)} bytes, not shown: prompt size limit)")
            continue
        shown.append(block)
        used += len(block)
    parts = ["".join(shown)]
    if listed:
        parts.append("Other files (present, not shown):\n" + "\n".join(f"- {p}" for p in listed))
    return "\n".join(part for part in parts if part)


def system_message(files: Files) -> dict[str, str]:
    """Kiln's rules, then the project's own AGENTS.md when it has one."""
    content = RULES
    agents = files.get(AGENTS_FILE)
    if agents is not None and is_text(agents):
        content += "\n\nThe project's AGENTS.md:\n\n" + agents.decode("utf-8")
    return {"role": "system", "content": content}


def generation_messages(
    prompt: str, files: Files, max_chars: int, live_errors: Sequence[str] = ()
) -> list[dict[str, str]]:
    """The first request: the whole project and what the user wants, and the errors its
    running dev session shows (``live_errors``, one line each), which the person sees too."""
    listing = render_files(files, None, max_chars)
    shown = ""
    if live_errors:
        lines = "\n".join(f"- {line}" for line in live_errors)
        shown = (
            "The project's live preview (its dev session) shows these errors now "
            f"(file:line:column: message):\n{lines}\n\n"
        )
    user = (
        f"The current project:\n\n{listing}\n\n{shown}"
        f"The user's request:\n{prompt}\n\n"
        "Write the files that implement it"
        + (", and fix the errors the live preview shows." if live_errors else ".")
    )
    return [system_message(files), {"role": "user", "content": user}]


def relevant_files(files: Files, report: dict[str, Any]) -> list[str]:
    """The files a fix needs to see: those the report names, and package.json."""
    named = [item["file"] for item in report.get("items", []) if item.get("file")]
    return [p for p in dict.fromkeys([*ALWAYS_RELEVANT, *named]) if p in files]


def fix_messages(
    prompt: str,
    files: Files,
    report: dict[str, Any],
    *,
    error_message: str,
    errors: str,
    max_chars: int,
) -> list[dict[str, str]]:
    """A fix request: the error report (``errors``, one line an item), the files it concerns
    and the list of the others."""
    relevant = relevant_files(files, report)
    others = sorted(p for p in files if p not in relevant and p != AGENTS_FILE)
    user = (
        f"The user asked for:\n{prompt}\n\n"
        f"The project failed to build: {error_message}\n"
        f"Errors (category, file:line, message):\n{errors}\n\n"
        f"The files concerned:\n\n{render_files(files, relevant, max_chars)}\n\n"
        "The project's other files (unchanged, not shown): "
        f"{', '.join(others) if others else 'none'}\n\n"
        "Fix the errors with as few changes as possible. Return only the files you change."
    )
    return [system_message(files), {"role": "user", "content": user}]
