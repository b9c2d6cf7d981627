"""Unit tests for orchestrator.storage.objects: the folder backend on real files; the S3
backend's retry and error mapping against a scripted client (the real server is in
tests/integration/test_storage_s3.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from orchestrator.errors import StorageUnavailable
from orchestrator.storage.objects import (
    LocalObjects,
    S3Objects,
    StoreConfig,
    open_objects,
    transient,
)


def test_folder_backend_basics(tmp_path: Path) -> None:
    objects = LocalObjects(tmp_path)
    objects.put_bytes("a/b.txt", b"hello")
    assert objects.get_bytes("a/b.txt") == b"hello" and objects.exists("a/b.txt")
    assert objects.get_bytes("a/none") is None and not objects.exists("a/none")
    assert objects.copy("a/b.txt", "c/d.txt") and not objects.copy("nope", "x")
    src = tmp_path / "src.bin"
    src.write_bytes(b"moved")
    objects.put_file("e/f.bin", src, "application/octet-stream", move=True)
    assert not src.exists() and objects.get_bytes("e/f.bin") == b"moved"
    assert sorted(objects.keys("a/")) == [("a/b.txt", 5)]
    assert objects.delete_prefix("a/") == 5 and list(objects.keys("a/")) == []
    assert objects.local_path("c/d.txt") == tmp_path / "c" / "d.txt"


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../b", "a//b"])
def test_folder_backend_refuses_keys_that_leave_it(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalObjects(tmp_path).put_bytes(key, b"x")


def test_storage_url() -> None:
    assert isinstance(open_objects(StoreConfig(), Path("/tmp")), LocalObjects)
    config = StoreConfig("s3://bucket/some/prefix", endpoint="http://127.0.0.1:1")
    s3 = open_objects(config, Path("/tmp"))
    assert isinstance(s3, S3Objects) and s3.where == "s3://bucket/some/prefix/"
    with pytest.raises(ValueError):
        open_objects(StoreConfig("gs://bucket"), Path("/tmp"))


def client_error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


def test_what_is_worth_retrying() -> None:
    assert transient(EndpointConnectionError(endpoint_url="http://x"))
    assert transient(client_error(503, "SlowDown")) and transient(client_error(500, "Internal"))
    assert not transient(client_error(403, "AccessDenied"))
    assert not transient(client_error(404, "NoSuchKey"))
    assert not transient(ValueError())


class Scripted:
    """Answers put_object/get_object from a script of exceptions and results."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls = 0

    def _next(self, **_: Any) -> Any:
        self.calls += 1
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    put_object = get_object = head_object = _next


def test_transient_faults_are_retried_then_succeed() -> None:
    client = Scripted(EndpointConnectionError(endpoint_url="x"), client_error(503, "SlowDown"), {})
    S3Objects(client, "b", "p", attempts=3, backoff_s=0).put_bytes("k", b"x")
    assert client.calls == 3


def test_spent_retries_are_storage_unavailable() -> None:
    client = Scripted(*[EndpointConnectionError(endpoint_url="x")] * 3)
    with pytest.raises(StorageUnavailable):
        S3Objects(client, "b", "p", attempts=3, backoff_s=0).put_bytes("k", b"x")
    assert client.calls == 3


def test_a_refusal_is_not_retried_and_a_missing_key_is_none() -> None:
    client = Scripted(client_error(403, "AccessDenied"))
    with pytest.raises(StorageUnavailable):
        S3Objects(client, "b", "p", attempts=3, backoff_s=0).put_bytes("k", b"x")
    assert client.calls == 1
    missing = Scripted(client_error(404, "NoSuchKey"), client_error(404, "404"))
    objects = S3Objects(missing, "b", "p", attempts=3, backoff_s=0)
    assert objects.get_bytes("k") is None and objects.exists("k") is False
    assert missing.calls == 2
