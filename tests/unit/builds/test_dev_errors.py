"""Which errors of a project's dev session still stand, for the code generator."""

from __future__ import annotations

from typing import Any

from orchestrator.builds.dev_errors import describe, dev_session_errors, standing_errors
from orchestrator.live.events import Event


def ev(event: str, **data: Any) -> Event:
    return Event(id="0-0", event=event, data=data)


BROKEN = ev("error", revision=2, message="Unexpected token", file="src/App.tsx", line=3, column=9)
RUNTIME = ev("error", revision=3, message="x is not defined")


def test_errors_of_a_running_session_stand_until_a_newer_revision_is_taken() -> None:
    assert standing_errors([ev("status", status="ready"), BROKEN]) == [BROKEN.data]
    taken = [BROKEN, ev("hmr", revision=3, latency_ms=40), RUNTIME]
    assert standing_errors(taken) == [RUNTIME.data]
    # An update of the same revision does not clear what that revision showed.
    assert standing_errors([BROKEN, ev("hmr", revision=2)]) == [BROKEN.data]


def test_a_stopped_session_shows_nothing_and_repeats_are_shown_once() -> None:
    assert standing_errors([BROKEN, ev("end", status="stopped")]) == []
    assert standing_errors([BROKEN, ev("end"), ev("status", status="ready"), RUNTIME]) == [
        RUNTIME.data
    ]
    assert standing_errors([BROKEN, BROKEN, ev("error", message="")]) == [BROKEN.data]


def test_a_line_names_the_place_when_it_is_known() -> None:
    assert describe(BROKEN.data) == "src/App.tsx:3:9: Unexpected token"
    assert describe({"message": "boom\n   at x"}) == "boom at x"


class History:
    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.asked: list[str] = []

    def dev_history(self, project: str) -> list[Event]:
        self.asked.append(project)
        return self.events


def test_the_session_of_the_named_project_is_read() -> None:
    history = History([BROKEN])
    assert dev_session_errors(history, "shop") == ["src/App.tsx:3:9: Unexpected token"]
    assert history.asked == ["shop"]
    assert dev_session_errors(History([]), "shop") == []
