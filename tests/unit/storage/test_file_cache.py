"""Unit tests for orchestrator.storage.file_cache on a real folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

from orchestrator.storage.file_cache import FileCache


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def writer(body: bytes, calls: list[str]) -> object:
    def fetch(destination: Path) -> bool:
        calls.append(destination.name)
        destination.write_bytes(body)
        return True

    return fetch


def test_a_miss_fetches_once_then_hits(tmp_path: Path) -> None:
    cache, calls = FileCache(tmp_path / "c", 1000), []
    body = b"a" * 100
    path = cache.fill(sha(body), 100, writer(body, calls))  # type: ignore[arg-type]
    assert path is not None and path.read_bytes() == body
    assert cache.fill(sha(body), 100, writer(body, calls)) == path  # type: ignore[arg-type]
    assert calls == [sha(body)] and cache.total == 100


def test_least_recently_used_files_go_past_the_budget(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "c", 250)
    bodies = [bytes([i]) * 100 for i in range(3)]
    for body in bodies[:2]:
        cache.fill(sha(body), 100, writer(body, []))  # type: ignore[arg-type]
    assert cache.get(sha(bodies[0])) is not None  # used: now the newest
    cache.fill(sha(bodies[2]), 100, writer(bodies[2], []))  # type: ignore[arg-type]
    assert cache.get(sha(bodies[1])) is None and not (tmp_path / "c" / sha(bodies[1])).exists()
    assert cache.get(sha(bodies[0])) is not None and cache.total == 200


def test_a_wrong_size_or_a_missing_object_is_not_kept(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "c", 1000)
    body = b"abc"
    assert cache.fill(sha(body), 4, writer(body, [])) is None  # type: ignore[arg-type]
    assert not (tmp_path / "c" / sha(body)).exists()
    assert cache.fill(sha(b"gone"), 4, lambda _: False) is None


def test_files_left_by_an_earlier_run_count_against_the_budget(tmp_path: Path) -> None:
    FileCache(tmp_path / "c", 1000).fill(sha(b"x" * 600), 600, writer(b"x" * 600, []))  # type: ignore[arg-type]
    again = FileCache(tmp_path / "c", 1000)
    assert again.total == 600 and again.get(sha(b"x" * 600)) is not None
