"""Unit tests for orchestrator.dev.reports: hook reports become bounded events."""

from __future__ import annotations

from orchestrator.dev.reports import error_event, hmr_event, report_revision


def test_revision_must_be_a_positive_int() -> None:
    assert report_revision({"revision": 3}) == 3
    for bad in (0, -1, "3", True, None, 2.5):
        assert report_revision({"revision": bad}) == 0


def test_hmr_event_latency_from_the_patch_arrival() -> None:
    event = hmr_event(
        {"kind": "update", "paths": ["/src/A.tsx"], "updates": 1}, 4, 1_000, ["src/A.tsx"], 1_085
    )
    assert event == {
        "revision": 4,
        "kind": "update",
        "paths": ["/src/A.tsx"],
        "latency_ms": 85,
        "updates": 1,
    }


def test_hmr_event_bounds_what_a_page_claims() -> None:
    event = hmr_event({"kind": "weird", "paths": ["x" * 1000] * 500}, 1, 10, ["a"], 5)
    assert event["kind"] == "update"
    assert len(event["paths"]) == 100 and len(event["paths"][0]) == 400
    assert event["latency_ms"] == 0  # a clock that went back never gives a negative time
    assert hmr_event({"kind": "full-reload"}, 1, 0, ["src/a.ts"], 1)["paths"] == ["src/a.ts"]


def test_error_event_takes_the_location_from_the_page_or_the_message() -> None:
    from_message = error_event({"message": "oops at src/App.tsx:3:7"}, 2)
    assert from_message == {
        "revision": 2,
        "message": "oops at src/App.tsx:3:7",
        "file": "src/App.tsx",
        "line": 3,
        "column": 7,
    }
    from_page = error_event({"message": "x", "file": "src/B.tsx", "line": 9, "column": "no"}, 2)
    assert from_page == {"revision": 2, "message": "x", "file": "src/B.tsx", "line": 9}
    assert len(error_event({"message": "m" * 5000}, 1)["message"]) == 2000
