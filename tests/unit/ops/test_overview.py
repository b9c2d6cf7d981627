"""Unit tests for orchestrator.ops.overview: what the dashboard's overviews are made of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.ops.overview import (
    cache_rates,
    percentile,
    project_rows,
    results_by_hour,
    step_percentiles,
)
from orchestrator.records.counters import bucket_fields
from orchestrator.records.models import Build

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


def build(project: str, status: str, minutes_ago: float, **fields: object) -> Build:
    created = NOW - timedelta(minutes=minutes_ago)
    return Build(project=project, status=status, created_at=created, **fields)


def test_projects_come_with_their_latest_build_latest_success_and_recent_times() -> None:
    builds = [  # newest first, as the store lists them
        build("shop", "failed", 1),
        build("blog", "succeeded", 2),
        build("shop", "succeeded", 3, started_at=NOW, finished_at=NOW + timedelta(seconds=4)),
    ]
    rows = project_rows(builds)
    assert [r["project"] for r in rows] == ["shop", "blog"]
    shop = rows[0]
    assert shop["latest"] is builds[0]
    assert shop["latest_succeeded"] == builds[2].id
    assert [r["status"] for r in shop["recent"]] == ["failed", "succeeded"]
    assert shop["recent"][1]["duration_ms"] == 4000


def test_a_project_with_no_success_has_no_latest_preview() -> None:
    assert project_rows([build("x", "failed", 1)])[0]["latest_succeeded"] is None


def test_results_are_counted_by_hour_and_outcome_for_the_last_day_only() -> None:
    ended = [
        build("a", "succeeded", 0, finished_at=NOW - timedelta(minutes=5)),
        build("a", "failed", 0, finished_at=NOW - timedelta(minutes=10), error_code="timeout"),
        build("a", "failed", 0, finished_at=NOW - timedelta(minutes=20), error_code="timeout"),
        build("a", "succeeded", 0, finished_at=NOW - timedelta(hours=30)),  # too old
        build("a", "running", 0),  # not ended
    ]
    assert results_by_hour(ended, NOW) == [
        {"hour": "2026-12-01T12:00:00+00:00", "code": "succeeded", "count": 1},
        {"hour": "2026-12-01T12:00:00+00:00", "code": "timeout", "count": 2},
    ]


def test_percentile_is_the_bound_of_the_bucket_that_holds_it() -> None:
    buckets = {"0.5": 1, "1": 1, "2": 5, "5": 9, "10": 10}
    assert percentile(buckets, 10, 0.5) == 2.0
    assert percentile(buckets, 10, 0.95) == 10.0
    assert percentile({}, 0, 0.5) is None


def test_step_percentiles_read_the_redis_histogram() -> None:
    raw: dict[bytes, bytes] = {}
    for seconds in (0.3, 1.5, 1.7, 8.0):
        for field in bucket_fields(seconds, {"step": "build"}):
            raw[field.encode()] = str(int(raw.get(field.encode(), b"0")) + 1).encode()
    (row,) = step_percentiles(raw)
    assert row == {"step": "build", "count": 4, "p50": 2.0, "p95": 10.0, "p99": 10.0}


def test_cache_rates_count_layer_builds_and_reuses() -> None:
    builds = [
        build("a", "succeeded", 1, cache={"layer": "hit"}),
        build("a", "succeeded", 2, cache={"layer": "miss"}),
        build("a", "succeeded", 3, cache={"reuse": "hit"}),
    ]
    rates = cache_rates({b"cache=layer": b"1"}, builds)
    assert rates == [
        {"name": "dependency layer", "hits": 1, "total": 2},
        {"name": "identical input", "hits": 1, "total": 3},
    ]
