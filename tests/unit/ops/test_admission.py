"""Unit tests for orchestrator.ops.admission: queue limits, Retry-After, disk floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InsufficientStorage, Overloaded
from orchestrator.ops.admission import check_disk, check_queue, retry_after_s
from orchestrator.storage.disk import free_disk_mb


def limits(**overrides: int) -> dict[str, int | str]:
    base: dict[str, int | str] = {
        "queued": 0,
        "max_queued": 10,
        "project": "p",
        "project_queued": 0,
        "max_per_project": 3,
    }
    return {**base, **overrides}


def test_below_both_limits_is_admitted() -> None:
    check_queue(**limits(queued=9, project_queued=2))  # type: ignore[arg-type]


def test_full_queue_is_refused_with_retry_after() -> None:
    with pytest.raises(Overloaded, match="queue is full") as caught:
        check_queue(**limits(queued=10))  # type: ignore[arg-type]
    assert caught.value.http_status == 429 and caught.value.code == "queue_full"
    assert caught.value.retry_after_s >= 5


def test_full_project_is_refused_and_names_supersede() -> None:
    with pytest.raises(Overloaded, match="project 'p' already has 3") as caught:
        check_queue(**limits(project_queued=3))  # type: ignore[arg-type]
    assert "supersede" in caught.value.message


def test_zero_means_no_limit() -> None:
    check_queue(**limits(queued=10**6, max_queued=0, project_queued=10**6, max_per_project=0))  # type: ignore[arg-type]


def test_retry_after_grows_with_the_excess_and_is_bounded() -> None:
    waits = [retry_after_s(q, 10) for q in (10, 11, 20, 10_000)]
    assert waits == sorted(waits) and waits[0] < waits[2]
    assert waits[-1] == 120
    assert retry_after_s(0, 10) == 5


def test_disk_floor() -> None:
    check_disk(2048, 1024)
    with pytest.raises(InsufficientStorage, match="nearly full") as caught:
        check_disk(100, 1024)
    assert caught.value.http_status == 507 and caught.value.code == "disk_full"


def test_free_disk_of_a_folder_not_made_yet(tmp_path: Path) -> None:
    assert free_disk_mb(tmp_path / "not" / "yet") == pytest.approx(free_disk_mb(tmp_path), rel=0.1)
