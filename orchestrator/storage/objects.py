"""Two backends behind one small interface: a folder on this host, or an S3-compatible store.

Keys are ``/``-separated names (see ``layout``). Every call either does what it says or
raises StorageUnavailable; a missing object is an answer (None / False), not an error.
The S3 backend retries transient faults with backoff (tenacity) before giving up.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import urlparse

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from orchestrator.errors import StorageUnavailable
from orchestrator.settings import Settings

T = TypeVar("T")
CHUNK = 256 * 1024


class Objects(Protocol):
    """What Kiln needs from a store of named byte strings."""

    where: str  # for messages: the folder or s3://bucket/prefix

    def put_bytes(self, key: str, data: bytes, content_type: str = ...) -> None:
        """Store ``data`` under ``key`` (a reader sees all of it or nothing)."""

    def put_file(self, key: str, path: Path, content_type: str, *, move: bool = False) -> None:
        """Store a local file, streamed; with ``move`` the local file may be taken over."""

    def put_files(self, items: list[tuple[str, Path, str]], *, move: bool = False) -> None:
        """Store many local files: (key, path, content type) each, in parallel where it helps."""

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object (small objects only)."""

    def download(self, key: str, destination: Path) -> bool:
        """Stream the object into ``destination`` (atomically); False when it is not there."""

    def local_path(self, key: str) -> Path | None:
        """The object as a file on this host when the backend is a folder, else None."""

    def exists(self, key: str) -> bool:
        """True when ``key`` is stored."""

    def copy(self, source: str, destination: str) -> bool:
        """Copy one object (server-side, or a hard link); False when ``source`` is missing."""

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix``."""

    def delete(self, keys: list[str]) -> None:
        """Remove these objects (missing ones are fine)."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns the bytes freed."""


@dataclass(frozen=True)
class StoreConfig:
    """Which store holds the objects and how it is reached (the ``KILN_STORAGE_*`` settings)."""

    url: str = ""  # empty: a folder on this host; else s3://bucket/prefix
    endpoint: str = ""  # an S3-compatible server other than AWS (path-style addressing)
    region: str = ""
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    timeout_s: float = 10.0  # connect and read timeout of one request
    attempts: int = 5  # tries of one request
    backoff_s: float = 0.5  # first wait between tries, doubling
    threads: int = 8  # files uploaded at once

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreConfig:
        """The store the settings name."""
        s = settings
        return cls(
            url=s.storage_url,
            endpoint=s.storage_endpoint,
            region=s.storage_region,
            access_key=s.storage_access_key,
            secret_key=s.storage_secret_key,
            timeout_s=s.storage_timeout_s,
            attempts=s.storage_attempts,
            backoff_s=s.storage_backoff_s,
            threads=s.storage_upload_threads,
        )


def open_objects(config: StoreConfig, root: Path) -> Objects:
    """The backend ``config.url`` names: empty for the folder ``root``, ``s3://bucket/prefix``."""
    if not config.url:
        return LocalObjects(root)
    parsed = urlparse(config.url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(
            f"KILN_STORAGE_URL must be empty or s3://bucket/prefix, not {config.url!r}"
        )
    return S3Objects(
        _s3_client(config),
        parsed.netloc,
        parsed.path.strip("/"),
        attempts=config.attempts,
        backoff_s=config.backoff_s,
        threads=config.threads,
    )


def _s3_client(config: StoreConfig) -> Any:
    """A boto3 S3 client that tries each request once (S3Objects retries, with backoff)."""
    import boto3
    from botocore.config import Config

    client_config = Config(
        connect_timeout=config.timeout_s,
        read_timeout=config.timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},  # retried here, with backoff
        max_pool_connections=max(10, config.threads * 2),
        s3={"addressing_style": "path"} if config.endpoint else None,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint or None,
        region_name=config.region or None,
        aws_access_key_id=config.access_key or None,
        aws_secret_access_key=config.secret_key or None,
        config=client_config,
    )


class LocalObjects:
    """Objects as files under one folder (the embedded default: ``var/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.where = str(self.root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if key.startswith("/") or ".." in parts or "" in parts[:-1]:
            raise ValueError(f"bad object key {key!r}")
        return self.root.joinpath(*parts)

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, path)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {path}: {exc}") from exc

    def put_file(self, key: str, path: Path, content_type: str, *, move: bool = False) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if move:
                with contextlib.suppress(OSError):  # another filesystem: copied below
                    os.replace(path, target)
                    return
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {target}: {exc}") from exc

    def put_files(self, items: list[tuple[str, Path, str]], *, move: bool = False) -> None:
        for key, path, content_type in items:
            self.put_file(key, path, content_type, move=move)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc}") from exc

    def download(self, key: str, destination: Path) -> bool:
        source = self._path(key)
        if not source.is_file():
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        return True

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def copy(self, source: str, destination: str) -> bool:
        src, dst = self._path(source), self._path(destination)
        if not src.is_file():
            return False
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)  # same filesystem: no extra space
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return True

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        base = self._path(prefix.rstrip("/")) if prefix.rstrip("/") else self.root
        if base.is_file() and not prefix.endswith("/"):
            yield prefix, base.stat().st_size
            return
        if not base.is_dir():
            return
        for folder, _dirs, files in os.walk(base):
            for name in files:
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    yield path.relative_to(self.root).as_posix(), path.lstat().st_size

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        freed = sum(size for _, size in self.keys(prefix))
        path = self._path(prefix.rstrip("/"))
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        return freed


def transient(exc: BaseException) -> bool:
    """True for faults worth another try: the store unreachable, slow, or answering 5xx."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return int(status) >= 500 or exc.response.get("Error", {}).get("Code") == "SlowDown"
    return False


def missing(exc: BaseException) -> bool:
    """True when S3 answered that the key (not the bucket) is not there."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound")


class S3Objects:
    """Objects in an S3-compatible bucket under a prefix (AWS S3, R2, GCS, MinIO, SeaweedFS)."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        *,
        attempts: int = 5,
        backoff_s: float = 0.5,
        threads: int = 8,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.threads = max(1, threads)
        self.where = f"s3://{bucket}/{self.prefix}"

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request with retries; StorageUnavailable once they are spent."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=10),
            retry=retry_if_exception(transient),
            reraise=True,
        )
        try:
            return retrying(fn)
        except Exception as exc:
            if missing(exc):
                raise
            if _is_botocore(exc):
                raise StorageUnavailable(
                    f"the object store {self.where} failed to {what}: {exc}"
                ) from exc
            raise

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self._call(
            f"store {key}",
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type
            ),
        )

    def put_file(self, key: str, path: Path, content_type: str, *, move: bool = False) -> None:
        def upload() -> None:
            with path.open("rb") as body:  # streamed from the file, in one request
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=body, ContentType=content_type
                )

        self._call(f"store {key}", upload)

    def put_files(self, items: list[tuple[str, Path, str]], *, move: bool = False) -> None:
        if len(items) <= 1 or self.threads == 1:
            for key, path, ctype in items:
                self.put_file(key, path, ctype)
            return
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="kiln-upload")
        try:
            futures = [pool.submit(self.put_file, k, p, c) for k, p, c in items]
            for future in futures:
                future.result()  # the first failure is raised...
        finally:
            # ...and the files not yet started are not tried (each would spend its retries).
            pool.shutdown(wait=True, cancel_futures=True)

    def get_bytes(self, key: str) -> bytes | None:
        def read() -> bytes:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            with contextlib.closing(body):
                return bytes(body.read())

        try:
            return self._call(f"read {key}", read)
        except Exception as exc:
            if missing(exc):
                return None
            raise

    def download(self, key: str, destination: Path) -> bool:
        destination.parent.mkdir(parents=True, exist_ok=True)

        def fetch() -> None:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            with (
                contextlib.closing(response["Body"]) as body,
                tempfile.NamedTemporaryFile(dir=destination.parent, delete=False) as tmp,
            ):
                try:
                    for chunk in body.iter_chunks(CHUNK):
                        tmp.write(chunk)
                except BaseException:
                    os.unlink(tmp.name)
                    raise
            os.replace(tmp.name, destination)

        try:
            self._call(f"read {key}", fetch)
        except Exception as exc:
            if missing(exc):
                return False
            raise
        return True

    def local_path(self, key: str) -> Path | None:
        return None

    def exists(self, key: str) -> bool:
        try:
            self._call(
                f"look up {key}",
                lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)),
            )
        except Exception as exc:
            if missing(exc):
                return False
            raise
        return True

    def copy(self, source: str, destination: str) -> bool:
        if not self.exists(source):
            return False
        self._call(
            f"copy {source}",
            lambda: self.client.copy_object(
                Bucket=self.bucket,
                Key=self._key(destination),
                CopySource={"Bucket": self.bucket, "Key": self._key(source)},
            ),
        )
        return True

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(prefix)}
            if token:
                args["ContinuationToken"] = token
            page = self._call(f"list {prefix}", lambda a=args: self.client.list_objects_v2(**a))  # type: ignore[misc]
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :], int(item["Size"])
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            self._call(
                "delete objects",
                lambda b=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": b, "Quiet": True}
                ),
            )

    def delete_prefix(self, prefix: str) -> int:
        found = list(self.keys(prefix))
        self.delete([k for k, _ in found])
        return sum(size for _, size in found)

    def check_bucket(self) -> None:
        """Raise StorageUnavailable unless the bucket is there and answers."""
        try:
            self._call("find the bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        except StorageUnavailable:
            raise
        except Exception as exc:
            if missing(exc):
                raise StorageUnavailable(f"there is no bucket {self.bucket!r}") from exc
            raise


def _is_botocore(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("botocore")


def stream_file(path: Path, start: int = 0, length: int | None = None) -> Iterator[bytes]:
    """Read ``length`` bytes of a file from ``start`` in chunks (never the whole file)."""
    with path.open("rb") as handle:
        handle.seek(start)
        left = length
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


def read_fileobj(handle: IO[bytes]) -> Iterator[bytes]:
    """Chunks of an open file."""
    while chunk := handle.read(CHUNK):
        yield chunk
