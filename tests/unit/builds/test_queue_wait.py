from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.preview import status_page
from orchestrator.builds.public import public_view
from orchestrator.builds.queue_wait import positions, queue_fields, queued_ms
from orchestrator.records.models import Build

T0 = datetime(2026, 12, 1, 20, 0, 0, tzinfo=UTC)


def test_a_queued_build_has_its_place_and_its_wait_so_far() -> None:
    build = Build(id="b" * 16, project="p", created_at=T0)
    now = T0 + timedelta(seconds=87)
    assert queue_fields(build, 3, now) == {
        "queued_ms": 87_000,
        "queue": {"position": 3, "waited_ms": 87_000},
    }


def test_a_started_build_keeps_its_wait_beside_its_duration() -> None:
    build = Build(
        project="p",
        status="succeeded",
        created_at=T0,
        started_at=T0 + timedelta(seconds=87),
        finished_at=T0 + timedelta(seconds=89.2),
    )
    body = public_view(build, "http://x/", queue_position=5)
    assert (body["queued_ms"], body["duration_ms"]) == (87_000, 2_200)
    assert body["queue"] == {"position": None, "waited_ms": 87_000}


def test_a_build_cancelled_in_the_queue_never_started() -> None:
    assert queued_ms(Build(project="p", status="cancelled", created_at=T0)) is None


def test_positions_count_from_one_oldest_first() -> None:
    assert positions(["a", "b", "c"]) == {"a": 1, "b": 2, "c": 3}


def test_the_preview_of_a_queued_build_says_its_place_and_wait() -> None:
    build = Build(id="0123456789abcdef", project="p", created_at=datetime.now(UTC))
    html = status_page(build, {"0123456789abcdef": 2}).body.decode()
    assert "queued: number 2 in line, waiting 0 s for a worker" in html
