"""Unit tests for the pure part of orchestrator.ops.views: which builds gc removes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.ops.views import select_for_gc
from orchestrator.records.models import Build

NOW = datetime(2026, 1, 10, tzinfo=UTC)


def build(build_id: str, project: str, days_old: float) -> Build:
    return Build(id=build_id, project=project, created_at=NOW - timedelta(days=days_old))


def test_old_builds_go_unless_kept_as_newest() -> None:
    builds = [build("a1", "a", 30), build("a2", "a", 20), build("b1", "b", 40)]
    chosen = select_for_gc(builds, {"a": {"a2"}, "b": set()}, NOW - timedelta(days=7))
    assert [b.id for b in chosen] == ["a1", "b1"]


def test_young_builds_stay_even_when_not_newest() -> None:
    builds = [build("a1", "a", 1), build("a2", "a", 0.5)]
    assert select_for_gc(builds, {"a": set()}, NOW - timedelta(days=7)) == []


def test_naive_database_times_count_as_utc() -> None:
    naive = Build(id="n", project="p", created_at=datetime(2026, 1, 1))
    assert select_for_gc([naive], {}, NOW - timedelta(days=7)) == [naive]
