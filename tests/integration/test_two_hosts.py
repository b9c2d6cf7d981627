"""Kiln past one machine, simulated on this one: two worker "hosts" with separate var/
folders and caches, an API "host" with its own, sharing only Redis, PostgreSQL (SQLite in
one file when PostgreSQL is not installed) and the S3 store (SeaweedFS).

Builds taken by either worker are served by the API; a worker's var/ deleted after its
build leaves its preview served; the store stopped mid-publish fails the build with
``storage_error`` and leaves nothing visible (the reconciler removes the orphan files);
the store stopped while serving answers 503 with Retry-After, and the preview comes back
with the store.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.builds.jobs import worker_name
from orchestrator.cache.layers import LayerStore
from orchestrator.records.db import get_engine
from orchestrator.records.store import BuildStore
from orchestrator.storage import layout
from tests.integration.conftest import (
    REDIS_URL,
    WRITE_DIST,
    Stack,
    launch_stack,
    node_project,
    require_services,
    wait_for_phase,
)
from tests.integration.postgres import pg_bin, postgres_cluster
from tests.integration.seaweed import SeaweedS3

pytestmark = pytest.mark.integration

MANY_FILES_DIST = """
const fs = require("fs");
fs.mkdirSync("dist/assets", { recursive: true });
fs.writeFileSync("dist/index.html", "<!doctype html><h1>many files</h1>");
for (let i = 0; i < 3000; i++) fs.writeFileSync(`dist/assets/f-${i}.js`, "x".repeat(1024));
"""


@dataclass
class Hosts:
    stack: Stack  # the API host (its var/ is stack.var_dir) and the worker processes
    s3: SeaweedS3
    prefix: str
    db_url: str
    worker_vars: dict[str, Path]  # worker name → that host's var/

    def records(self) -> BuildStore:
        return BuildStore(get_engine(self.db_url))

    def objects(self, key_prefix: str) -> list[str]:
        client: Any = self.s3.client()
        found = client.list_objects_v2(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/{key_prefix}")
        return [item["Key"] for item in found.get("Contents", [])]


@contextlib.contextmanager
def database(folder: Path) -> Iterator[str]:
    if pg_bin("initdb") and pg_bin("postgres"):
        # Outside pytest's private (0700) temp folder: the cluster runs as the postgres user.
        with postgres_cluster(Path(tempfile.mkdtemp(prefix="kiln-pg-")) / "cluster") as url:
            yield url
    else:
        yield f"sqlite:///{folder / 'shared.db'}"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory, object_store: SeaweedS3) -> Iterator[Hosts]:
    require_services()
    root = tmp_path_factory.mktemp("two-hosts")
    prefix = f"hosts-{int(time.time())}"
    with database(root) as db_url:
        shared = {
            **object_store.env(prefix),
            "KILN_DATABASE_URL": db_url,
            "KILN_STORAGE_ATTEMPTS": "3",
            "KILN_STORAGE_BACKOFF_S": "0.2",
            "KILN_MAINTENANCE_INTERVAL_S": "2",
            "KILN_WARM_TEMPLATES": "false",
        }
        stack = launch_stack(root / "api-host", workers=0, redis_url=REDIS_URL, env=shared)
        worker_vars = {}
        try:
            for name in ("a", "b"):
                var = root / f"worker-{name}-host"
                stack.worker_env = {"KILN_VAR_DIR": str(var), "KILN_NPM_CACHE": str(var / "npm")}
                process = stack.start_worker()
                worker_vars[worker_name(stack.instance, process.pid)] = var
            yield Hosts(stack, object_store, prefix, db_url, worker_vars)
        finally:
            stack.stop()
            for var in worker_vars.values():
                unmount_under(var)


def unmount_under(folder: Path) -> None:
    """Unmount the loop filesystems (workspaces, dependency layers) a worker left under
    ``folder``: a killed worker does not clean up."""
    with contextlib.suppress(Exception):
        LayerStore(folder / "cache" / "layers").unmount_all()
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    for point in sorted((line.split()[1] for line in mounts), reverse=True):
        if point.startswith(str(folder.resolve()) + "/"):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


def submit(hosts: Hosts, label: str, build_js: str = WRITE_DIST) -> str:
    marker = f'fs.writeFileSync("dist/which.txt", {json.dumps(label)});\n'
    files = node_project(build_js + marker)
    project = "two-hosts-" + label.replace(" ", "-")
    return str(hosts.stack.client.submit_files(files, project=project)["id"])


def test_builds_taken_by_either_worker_are_served_by_the_api(hosts: Hosts) -> None:
    ids = [submit(hosts, f"build {i}") for i in range(4)]
    for build_id in ids:
        end = hosts.stack.wait(build_id)
        assert end["status"] == "succeeded", end.get("error")
    taken_by = {hosts.records().get(build_id).worker for build_id in ids}
    assert taken_by <= set(hosts.worker_vars) and len(taken_by) == 2, taken_by
    for i, build_id in enumerate(ids):
        page = hosts.stack.preview(build_id, "/which.txt")
        assert page.status_code == 200 and page.text == f"build {i}"
        assert "<h1>fixture</h1>" in hosts.stack.preview(build_id, "/").text
        assert hosts.objects(layout.manifest(build_id))  # in the store, not on a host
    # No host keeps artifacts or sources: the API only caches what it served.
    for var in [hosts.stack.var_dir, *hosts.worker_vars.values()]:
        assert not any((var / "artifacts").rglob("*")) and not any((var / "sources").rglob("*"))
    assert any((hosts.stack.var_dir / "cache" / "preview").iterdir())


def test_a_workers_var_deleted_after_its_build_leaves_its_preview_served(hosts: Hosts) -> None:
    build_id = submit(hosts, "before the wipe")
    end = hosts.stack.wait(build_id)
    assert end["status"] == "succeeded", end.get("error")
    worker = hosts.records().get(build_id).worker
    assert worker in hosts.worker_vars
    instance = hosts.stack.instance
    process = next(p for p in hosts.stack.workers if worker_name(instance, p.pid) == worker)
    hosts.stack.kill_worker(process)  # the host is gone...
    unmount_under(hosts.worker_vars[worker])  # (as its reboot would)
    shutil.rmtree(hosts.worker_vars[worker])  # ...and its disk with it
    page = hosts.stack.preview(build_id, "/which.txt")
    assert page.status_code == 200 and page.text == "before the wipe"
    # The other worker still builds.
    again = submit(hosts, "after the wipe")
    assert hosts.stack.wait(again)["status"] == "succeeded"
    assert hosts.stack.preview(again, "/which.txt").text == "after the wipe"


def test_the_store_stopped_mid_publish_fails_storage_error_with_nothing_visible(
    hosts: Hosts,
) -> None:
    build_id = submit(hosts, "cut short", MANY_FILES_DIST)
    wait_for_phase(hosts.stack, build_id, "publishing")
    hosts.s3.stop()
    try:
        end = hosts.stack.wait(build_id)
    finally:
        hosts.s3.restart()
    assert end["status"] == "failed" and end["error"]["code"] == "storage_error", end["error"]
    page = hosts.stack.preview(build_id, "/")
    assert page.status_code == 404 and "storage_error" in page.text  # the status page
    assert hosts.stack.preview(build_id, "/assets/f-1.js").status_code == 404
    assert not hosts.objects(layout.manifest(build_id))
    # Whatever was uploaded before the store went away is removed by the reconciler.
    deadline = time.monotonic() + 90
    while hosts.objects(layout.dist_prefix(build_id)) or hosts.objects(
        layout.upload_marker(build_id)
    ):
        assert time.monotonic() < deadline, "orphan objects were not cleaned"
        time.sleep(1)


def test_the_store_stopped_while_serving_is_503_and_the_preview_comes_back(hosts: Hosts) -> None:
    seen = submit(hosts, "seen before")
    unseen = submit(hosts, "never seen")
    for build_id in (seen, unseen):
        assert hosts.stack.wait(build_id)["status"] == "succeeded"
    assert hosts.stack.preview(seen, "/").status_code == 200  # known and cached by the API
    hosts.s3.stop()
    try:
        down = hosts.stack.preview(unseen, "/")
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] and down.headers["cache-control"] == "no-store"
        assert hosts.stack.preview(seen, "/which.txt").status_code == 503  # not fetched yet
        # What the API already holds is still served (immutable builds).
        assert "<h1>fixture</h1>" in hosts.stack.preview(seen, "/").text
    finally:
        hosts.s3.restart()
    deadline = time.monotonic() + 30
    while (back := hosts.stack.preview(unseen, "/which.txt")).status_code == 503:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert back.status_code == 200 and back.text == "never seen"
    assert hosts.stack.preview(seen, "/which.txt").text == "seen before"
