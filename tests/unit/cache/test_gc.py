"""Unit tests for orchestrator.cache.gc's eviction choice (least recently used first)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.cache.gc import choose_evictions
from orchestrator.cache.layers import LayerInfo


def layer(key: str, size: int, last_used: float) -> LayerInfo:
    return LayerInfo(key, Path(key), size, files=1, created=0, last_used=last_used)


def test_nothing_goes_while_within_budget() -> None:
    assert choose_evictions([layer("a", 5, 1), layer("b", 5, 2)], 10) == []


def test_least_recently_used_go_first_until_the_rest_fit() -> None:
    entries = [layer("new", 4, 30), layer("old", 4, 10), layer("mid", 4, 20)]
    assert [e.key for e in choose_evictions(entries, 5)] == ["old", "mid"]
    assert [e.key for e in choose_evictions(entries, 8)] == ["old"]


def test_zero_budget_empties_everything() -> None:
    entries = [layer("a", 1, 1), layer("b", 0, 2)]
    assert [e.key for e in choose_evictions(entries, 0)] == ["a"]  # an empty one costs nothing
    assert choose_evictions([], 0) == []
