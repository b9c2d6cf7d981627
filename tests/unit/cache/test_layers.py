"""Unit tests for orchestrator.cache.layers and .resolutions on a temporary folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.cache.layers import LayerStore
from orchestrator.cache.resolutions import ResolutionStore
from orchestrator.sandbox.runner import SCRATCH_DIRS

KEY = "a" * 40


def make(store: LayerStore, key: str = KEY) -> Path:
    staging = store.new_staging(key)
    (staging / "node_modules" / "pkg").mkdir(parents=True)
    (staging / "node_modules" / "pkg" / "index.js").write_text("x" * 5000)
    return store.commit(key, staging, {"argv": ["npm", "ci"]})


def test_a_layer_appears_whole_under_its_key_with_scratch_folders(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    assert store.lookup(KEY) is None
    modules = make(store)
    assert store.lookup(KEY) == modules == tmp_path / KEY / "node_modules"
    assert all((modules / name).is_dir() for name in SCRATCH_DIRS)
    [entry] = store.entries()
    assert entry.key == KEY and entry.size_bytes >= 5000 and entry.files >= 3
    assert not any((tmp_path / ".staging").iterdir())


def test_lookup_marks_a_layer_used(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    make(store)
    meta = tmp_path / f"{KEY}.json"
    os.utime(meta, (1, 1))
    store.lookup(KEY)
    assert meta.stat().st_mtime > time.time() - 60


def test_a_second_commit_of_the_same_key_keeps_the_first(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    first = make(store)
    (first / "marker").write_text("first")
    assert make(store) == first and (first / "marker").read_text() == "first"
    assert not any((tmp_path / ".staging").iterdir())


def test_a_held_layer_is_not_removed(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    make(store)
    held = store.lock(KEY)
    assert held.acquire(exclusive=False)
    assert store.remove(KEY) is False and store.lookup(KEY) is not None
    held.release()
    assert store.remove(KEY) is True and store.lookup(KEY) is None


def test_exclusive_lock_waits_and_can_give_up(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    user = store.lock(KEY)
    assert user.acquire(exclusive=False)
    maker = store.lock(KEY)
    assert maker.acquire(exclusive=True) is False

    class GaveUp(Exception):
        pass

    def give_up() -> None:
        raise GaveUp

    with pytest.raises(GaveUp):
        maker.acquire(exclusive=True, wait=give_up)
    user.release()
    assert maker.acquire(exclusive=True)
    maker.release()


def test_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LayerStore(tmp_path).lookup("../../etc")


def test_resolutions_expire_after_their_ttl(tmp_path: Path) -> None:
    store = ResolutionStore(tmp_path, ttl_s=60)
    store.put("k1", b"{}")
    assert store.get("k1") == b"{}" and store.get("k2") is None
    old = time.time() - 120
    os.utime(tmp_path / "k1.package-lock.json", (old, old))
    assert store.get("k1") is None
    assert store.prune() == 1 and not list(tmp_path.iterdir())


def test_scratch_mount_points_are_always_plain_empty_folders(tmp_path: Path) -> None:
    store = LayerStore(tmp_path)
    staging = store.new_staging(KEY)
    modules = staging / "node_modules"
    modules.mkdir()
    (modules / ".cache").symlink_to("/etc")
    (modules / ".vite").mkdir()
    (modules / ".vite" / "stale").write_text("x")
    (modules / ".tmp").write_text("a file")
    committed = store.commit(KEY, staging, {})
    for name in SCRATCH_DIRS:
        path = committed / name
        assert path.is_dir() and not path.is_symlink() and not any(path.iterdir())
