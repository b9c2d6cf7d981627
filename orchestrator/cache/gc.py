"""Keeping the caches within their size budgets: least recently used first, never in use.

Layers: a layer a build holds (shared flock) is skipped, so eviction never pulls
node_modules from under a running build. The npm cache: content files go oldest first
(npm treats a missing content file as a cache miss and downloads it again), and only
while no install step holds the npm cache's lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.cache.layers import KeyLock, LayerInfo, LayerStore, disk_usage, layer_store
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.settings import Settings

MB = 1024 * 1024
NPM_CONTENT = "_cacache/content-v2"


def choose_evictions(entries: Sequence[LayerInfo], budget_bytes: int) -> list[LayerInfo]:
    """The least recently used entries to remove so that the rest fit in ``budget_bytes``."""
    total = sum(e.size_bytes for e in entries)
    chosen = []
    for entry in sorted(entries, key=lambda e: e.last_used):
        if total <= budget_bytes:
            break
        chosen.append(entry)
        total -= entry.size_bytes
    return chosen


@dataclass
class GcReport:
    """What a collection did."""

    layers_removed: list[str] = field(default_factory=list)
    layers_busy: list[str] = field(default_factory=list)
    layer_bytes_freed: int = 0
    layer_bytes_left: int = 0
    npm_bytes_freed: int = 0
    npm_bytes_left: int = 0
    npm_busy: bool = False
    resolutions_removed: int = 0
    leftovers_removed: int = 0


def npm_cache_lock(settings: Settings) -> KeyLock:
    """The lock install steps hold (shared) on the npm cache; trimming needs it exclusive."""
    return KeyLock(settings.var_dir.resolve() / "cache" / "npm.lock")


@contextlib.contextmanager
def using_npm_cache(settings: Settings) -> Iterator[None]:
    """Hold the npm cache (shared) while an install step may read or write it."""
    lock = npm_cache_lock(settings)
    try:
        lock.acquire(exclusive=False, wait=lambda: None)
        yield
    finally:
        lock.release()


def collect_layers(store: LayerStore, budget_bytes: int, report: GcReport) -> None:
    """Remove least recently used layers until the rest fit the budget (busy ones stay)."""
    entries = store.entries()
    for entry in choose_evictions(entries, budget_bytes):
        if store.remove(entry.key):
            report.layers_removed.append(entry.key)
            report.layer_bytes_freed += entry.size_bytes
        else:
            report.layers_busy.append(entry.key)
    removed = set(report.layers_removed)
    report.layer_bytes_left = sum(e.size_bytes for e in entries if e.key not in removed)


def _content_files(root: Path) -> list[tuple[float, int, Path]]:
    found = []
    for current, _dirs, files in os.walk(root / NPM_CONTENT):
        for name in files:
            path = Path(current, name)
            with contextlib.suppress(OSError):
                info = path.lstat()
                found.append((max(info.st_atime, info.st_mtime), info.st_blocks * 512, path))
    return found


def trim_npm_cache(settings: Settings, budget_bytes: int, report: GcReport) -> None:
    """Delete the npm cache's oldest content files until it fits the budget."""
    root = settings.npm_cache_dir
    total, _ = disk_usage(root) if root.is_dir() else (0, 0)
    report.npm_bytes_left = total
    if total <= budget_bytes:
        return
    lock = npm_cache_lock(settings)
    try:
        if not lock.acquire(exclusive=True):
            report.npm_busy = True
            return
        for _when, size, path in sorted(_content_files(root)):
            if total <= budget_bytes:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                report.npm_bytes_freed += size
    finally:
        lock.release()
    report.npm_bytes_left = total


def collect(settings: Settings, *, layer_budget_mb: int, npm_budget_mb: int) -> GcReport:
    """Bring every cache within the given budgets (0 empties it, as far as nothing uses it)."""
    report = GcReport()
    store = layer_store(settings)
    report.leftovers_removed = store.sweep_leftovers()
    collect_layers(store, layer_budget_mb * MB, report)
    trim_npm_cache(settings, npm_budget_mb * MB, report)
    resolutions = ResolutionStore(settings.resolutions_dir, settings.resolution_ttl_s)
    report.resolutions_removed = resolutions.prune()
    return report


def enforce_budgets(settings: Settings) -> GcReport:
    """Collect with the configured budgets (after a build added to the caches)."""
    return collect(
        settings,
        layer_budget_mb=settings.layer_cache_max_mb,
        npm_budget_mb=settings.npm_cache_max_mb,
    )
