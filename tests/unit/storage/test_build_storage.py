"""Unit tests for orchestrator.storage.build_storage on the folder backend (real files), with
a recording wrapper where the order of writes or a failing store matters."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import BuildError, StorageUnavailable
from orchestrator.storage import layout
from orchestrator.storage.artifacts import OutputLimits
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.manifest import Manifest
from orchestrator.storage.objects import LocalObjects

LIMITS = OutputLimits(max_bytes=100_000, max_files=100)


def make_dist(root: Path) -> Path:
    for name, text in {
        "index.html": "<!doctype html><h1>hi</h1>",
        "assets/index-abc.js": "console.log(1)",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


class Recording(LocalObjects):
    """The folder backend, noting each write; ``fail_after`` writes it starts failing."""

    def __init__(self, root: Path, fail_after: int | None = None) -> None:
        super().__init__(root)
        self.writes: list[str] = []
        self.fail_after = fail_after

    def _note(self, key: str) -> None:
        if self.fail_after is not None and len(self.writes) >= self.fail_after:
            raise StorageUnavailable("the store went away")
        self.writes.append(key)

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        self._note(key)
        super().put_bytes(key, data, content_type)

    def put_file(self, key: str, path: Path, content_type: str, *, move: bool = False) -> None:
        self._note(key)
        super().put_file(key, path, content_type, move=move)


def test_publish_stores_files_then_the_manifest_last(tmp_path: Path) -> None:
    objects = Recording(tmp_path / "store")
    storage = BuildStorage(objects)
    counts = storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    assert counts == (2, len("<!doctype html><h1>hi</h1>") + len("console.log(1)"))
    assert objects.writes[0] == layout.upload_marker("b1")
    assert objects.writes[-1] == layout.manifest("b1")
    assert set(objects.writes[1:-1]) == {
        layout.dist_file("b1", "index.html"),
        layout.dist_file("b1", "assets/index-abc.js"),
    }
    assert storage.unfinished_uploads() == []  # the marker is gone
    manifest = storage.manifest("b1")
    assert manifest is not None and sorted(manifest.files) == ["assets/index-abc.js", "index.html"]
    path = storage.file_path("b1", manifest.files["index.html"])
    assert path is not None and path.read_text() == "<!doctype html><h1>hi</h1>"


def test_a_store_failing_mid_publish_is_storage_error_and_nothing_visible(tmp_path: Path) -> None:
    objects = Recording(tmp_path / "store", fail_after=2)  # the marker and one file
    storage = BuildStorage(objects)
    with pytest.raises(BuildError) as caught:
        storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    assert caught.value.code == "storage_error"
    assert storage.manifest("b1") is None and not storage.has_artifact("b1")
    assert list(objects.keys(layout.dist_prefix("b1"))) == []  # cleaned up at once


def test_a_publish_cut_short_is_an_orphan_until_discarded(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path / "store"))
    storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    storage.objects.delete([layout.manifest("b1")])  # as if the worker died before it
    storage.objects.put_bytes(layout.upload_marker("b1"), b"{}")
    assert storage.unfinished_uploads() == ["b1"]
    assert storage.manifest("b1") is None  # a legacy dist/ with a marker is not a build
    assert storage.discard_upload("b1") > 0
    assert storage.unfinished_uploads() == []
    assert list(storage.objects.keys(layout.dist_prefix("b1"))) == []


def test_discarding_keeps_a_publish_whose_manifest_was_written(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path / "store"))
    storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    storage.objects.put_bytes(layout.upload_marker("b1"), b"{}")
    assert storage.discard_upload("b1") == 0
    assert storage.has_artifact("b1") and storage.unfinished_uploads() == []


def test_a_dist_folder_from_before_manifests_is_still_served(tmp_path: Path) -> None:
    make_dist(tmp_path / "store" / "artifacts" / "old" / "dist")
    storage = BuildStorage(LocalObjects(tmp_path / "store"))
    manifest = storage.manifest("old")
    assert manifest is not None and "index.html" in manifest.files
    assert storage.has_artifact("old")


def test_sources_kept_and_read(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path))
    storage.write_source("b1", b"tar bytes")
    assert storage.has_source("b1") and storage.read_source("b1") == b"tar bytes"
    with storage.open_source("b1") as handle:
        assert handle.read() == b"tar bytes"
    assert not storage.has_kept_source("b1")
    assert storage.keep_source("b1")
    assert storage.read_kept_source("b1") == b"tar bytes"
    assert (tmp_path / layout.kept_source("b1")).stat().st_nlink == 2  # a hard link
    storage.remove_source("b1")
    assert storage.read_source("b1") is None and storage.has_kept_source("b1")


def test_keep_source_is_best_effort_when_the_store_is_down(tmp_path: Path) -> None:
    class Down(LocalObjects):
        def exists(self, key: str) -> bool:
            raise StorageUnavailable("down")

    assert BuildStorage(Down(tmp_path)).keep_source("b1") is False


def test_reuse_copies_the_artifact_under_the_new_id(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path / "store"))
    storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    assert storage.reuse_artifact("b1", "b2")
    copied = storage.manifest("b2")
    assert isinstance(copied, Manifest) and copied.build_id == "b2"
    storage.remove_build("b1")
    assert storage.manifest("b1") is None
    path = storage.file_path("b2", copied.files["index.html"])
    assert path is not None and "hi" in path.read_text()
    assert not storage.reuse_artifact("b1", "b3")


def test_remove_build_frees_everything_it_counted(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path / "store"))
    storage.write_source("b1", b"x" * 100)
    storage.publish(make_dist(tmp_path / "dist"), "b1", LIMITS)
    storage.keep_source("b1")
    storage.write_events("b1", b'{"id": "1-0"}\n')
    size = storage.stored_bytes("b1")
    assert size > 100
    assert storage.remove_build("b1") == size
    assert storage.stored_bytes("b1") == 0
    assert storage.read_events("b1") is None and storage.read_source("b1") is None


def test_check_does_a_round_trip(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path))
    assert "round trip" in storage.check()
    assert list(storage.objects.keys("doctor/")) == []


def test_events_round_trip(tmp_path: Path) -> None:
    storage = BuildStorage(LocalObjects(tmp_path))
    assert storage.read_events("b1") is None
    storage.write_events("b1", b"line\n")
    assert storage.read_events("b1") == b"line\n"
