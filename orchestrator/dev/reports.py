"""The client hook's reports turned into ``hmr`` and ``error`` events. Pure.

A report comes from a page the project controls, so every field is bounded and typed
here; nothing in it is trusted beyond being the page's own claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.dev.vite import error_location

MAX_PATHS = 100
MAX_PATH_CHARS = 400
MAX_MESSAGE_CHARS = 2000
UPDATE_KINDS = ("update", "full-reload")


def report_revision(raw: Mapping[str, Any]) -> int:
    """The revision a report names (0 when it names none or nonsense)."""
    revision = raw.get("revision")
    return (
        revision
        if isinstance(revision, int) and not isinstance(revision, bool) and revision > 0
        else 0
    )


def hmr_event(
    raw: Mapping[str, Any], revision: int, arrived_ms: int, edited: list[str], now_ms: int
) -> dict[str, Any]:
    """The ``hmr`` event of a revision's first applied update (or full reload)."""
    paths = raw.get("paths")
    shown = [str(p)[:MAX_PATH_CHARS] for p in paths][:MAX_PATHS] if isinstance(paths, list) else []
    data: dict[str, Any] = {
        "revision": revision,
        "kind": "full-reload" if raw.get("kind") == "full-reload" else "update",
        "paths": shown or edited,
        "latency_ms": max(0, now_ms - arrived_ms),
    }
    updates = raw.get("updates")
    if isinstance(updates, int) and not isinstance(updates, bool):
        data["updates"] = updates
    return data


def error_event(raw: Mapping[str, Any], revision: int) -> dict[str, Any]:
    """An ``error`` event: the message, and file, line and column where known."""
    message = str(raw.get("message", ""))[:MAX_MESSAGE_CHARS]
    data: dict[str, Any] = {"revision": revision, "message": message, **error_location(message)}
    file = raw.get("file")
    if isinstance(file, str) and file:
        data["file"] = file[:MAX_PATH_CHARS]
    for key in ("line", "column"):
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            data[key] = value
    return data
