"""Unit tests for the pure decisions of recovery and the janitor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.builds.recovery import should_retry
from orchestrator.ops.janitor import is_live
from orchestrator.records.models import Build

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_retry_while_attempts_are_left() -> None:
    assert should_retry(1, 2)
    assert not should_retry(2, 2)
    assert not should_retry(1, 1)


def running(beat_s_ago: float | None, *, naive: bool = False) -> Build:
    beat = None if beat_s_ago is None else NOW - timedelta(seconds=beat_s_ago)
    if beat is not None and naive:
        beat = beat.replace(tzinfo=None)
    return Build(project="p", status="running", started_at=NOW, heartbeat_at=beat)


def test_a_fresh_heartbeat_keeps_a_build_live() -> None:
    assert is_live(running(5), NOW, 30)
    assert is_live(running(5, naive=True), NOW, 30)  # SQLite's naive UTC


def test_a_stale_heartbeat_or_an_ended_build_is_not_live() -> None:
    assert not is_live(running(31), NOW, 30)
    assert not is_live(Build(project="p", status="succeeded"), NOW, 30)
    assert not is_live(None, NOW, 30)


def test_without_a_heartbeat_the_start_time_counts() -> None:
    assert is_live(running(None), NOW, 30)
    assert not is_live(running(None), NOW + timedelta(seconds=60), 30)


def test_a_warm_up_container_is_stale_only_past_the_longest_step() -> None:
    from dataclasses import dataclass
    from typing import cast

    from orchestrator.builds.warm import WARM_LABEL
    from orchestrator.context import Context
    from orchestrator.ops.janitor import _stale
    from orchestrator.sandbox.runner import LABEL_BUILD
    from orchestrator.settings import Settings

    @dataclass
    class FakeContext:
        settings: Settings

    ctx = cast(Context, FakeContext(Settings(max_timeout_s=900, _env_file=None)))  # type: ignore[call-arg]
    now = datetime.now(UTC)
    labels = {LABEL_BUILD: WARM_LABEL}
    assert not _stale(ctx, labels, now, (now - timedelta(seconds=100)).timestamp())
    assert _stale(ctx, labels, now, (now - timedelta(seconds=2000)).timestamp())
    assert not _stale(ctx, labels, now, None)
