"""kiln watch's view of a feed."""

from __future__ import annotations

from orchestrator.live.watch_view import FeedView


def test_builds_move_through_their_states_and_end() -> None:
    view = FeedView("shop")
    view.apply("1-0", "build", {"id": "a", "status": "queued", "phase": "queued"})
    view.apply("2-0", "build", {"id": "b", "status": "queued", "phase": "queued"})
    view.apply("3-0", "build", {"id": "a", "status": "running", "phase": "building"})
    assert [(r.id, r.status, r.phase) for r in view.rows()] == [
        ("a", "running", "building"),
        ("b", "queued", "queued"),
    ]
    end = {"id": "a", "status": "failed", "duration_ms": 1200, "error": {"code": "build_failed"}}
    view.apply("4-0", "build_end", end)
    row = view.rows()[0]
    assert (row.status, row.duration_ms, row.error) == ("failed", 1200, "build_failed")


def test_only_the_newest_builds_are_kept() -> None:
    view = FeedView("shop", limit=3)
    for n in range(10):
        view.apply(f"{n + 1}-0", "build", {"id": f"b{n}", "status": "queued", "phase": "queued"})
    assert [r.id for r in view.rows()] == ["b9", "b8", "b7"]


def test_dev_session_line_and_reconnect_notice() -> None:
    view = FeedView("shop")
    assert view.dev == "no dev session"
    view.apply("1-0", "status", {"status": "ready", "revision": 2})
    assert view.dev == "dev session ready (revision 2)"
    view.apply("2-0", "hmr", {"revision": 3, "kind": "update", "latency_ms": 41})
    assert "revision 3" in view.dev and "41 ms" in view.dev
    view.apply("3-0", "error", {"revision": 3, "message": "boom", "file": "src/App.tsx"})
    assert view.dev == "dev session error in src/App.tsx: boom"
    view.apply("3-0", "error", {"code": "slow_consumer", "message": "behind", "last_id": "3-0"})
    assert view.notice.startswith("reconnecting") and "boom" in view.dev
