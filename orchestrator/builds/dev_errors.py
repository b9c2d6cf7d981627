"""What a project's running dev session shows wrong right now, for the code generator.

A dev session reports compile errors (Vite's overlay) and uncaught runtime errors of the
page as ``error`` events on the project's dev stream, each with the revision it was seen
at. When a generation edits a project whose session is running, the model gets those
errors with the request, so that "fix it" means what the person sees. The choice of which
errors still stand is pure (``standing_errors``); ``dev_session_errors`` reads the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from orchestrator.live.events import Event

MAX_ERRORS = 8


class DevHistory(Protocol):
    """What reading a session's errors needs of the event bus (``live.logbus.LogBus``)."""

    def dev_history(self, project: str) -> list[Event]:
        """Every event of the project's dev-session stream, oldest first."""
        ...


def standing_errors(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The errors of the session still running, oldest first, without repeats.

    A session's ``end`` clears everything before it (no session, nothing stands); an
    ``hmr`` event at revision r means the page took revision r, so errors seen at older
    revisions no longer stand (a compile error still there is reported again by Vite).
    """
    standing: list[dict[str, Any]] = []
    for event in events:
        if event.event == "end":
            standing = []
        elif event.event == "hmr":
            revision = _revision(event.data)
            standing = [e for e in standing if _revision(e) >= revision]
        elif event.event == "error" and event.data.get("message"):
            standing.append(dict(event.data))
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for error in standing:
        unique.setdefault((error.get("message"), error.get("file"), error.get("line")), error)
    return list(unique.values())[-MAX_ERRORS:]


def _revision(data: Mapping[str, Any]) -> int:
    value = data.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def describe(error: Mapping[str, Any]) -> str:
    """``src/App.tsx:12:5: message`` (the place where known), one line."""
    place = ":".join(str(error[k]) for k in ("file", "line", "column") if error.get(k) is not None)
    message = " ".join(str(error.get("message", "")).split())
    return f"{place}: {message}" if place else message


def dev_session_errors(bus: DevHistory, project: str) -> list[str]:
    """The standing errors of ``project``'s dev session, one line each (none: no session)."""
    return [describe(error) for error in standing_errors(bus.dev_history(project))]
