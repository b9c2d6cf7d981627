"""A whole Kiln worker in-process, with nothing running: SQLite in tmp_path, fakeredis for
Redis, ``FakeSandbox`` for Docker, plain-folder workspaces and layers (``workspace_mb=0``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from sqlmodel import SQLModel

from orchestrator.builds.pipeline import BuildRun, Rounds
from orchestrator.context import Context, cancel_key
from orchestrator.live.events import Event
from orchestrator.project.input import Files, to_tar
from orchestrator.records.db import make_engine
from orchestrator.records.models import Build
from orchestrator.records.store import BuildStore
from orchestrator.sandbox.fake import FakeSandbox, Handler
from orchestrator.sandbox.step import Limits
from orchestrator.service import view
from orchestrator.settings import Settings

LIMITS = Limits(timeout_s=60, memory_mb=512, cpus=1.0)


def manifest(**fields: Any) -> bytes:
    """A package.json with a build script and ``fields``."""
    return json.dumps({"name": "app", "scripts": {"build": "vite build"}, **fields}).encode()


def lockfile(dependencies: Mapping[str, str], **root: Any) -> bytes:
    """An in-sync lockfileVersion 3 for ``devDependencies``, every package a registry tarball."""
    packages: dict[str, Any] = {"": {"name": "app", "devDependencies": dict(dependencies), **root}}
    for name in dependencies:
        packages[f"node_modules/{name}"] = {
            "version": "1.0.0",
            "resolved": f"https://registry.npmjs.org/{name}/-/{name}-1.0.0.tgz",
            "integrity": "sha512-" + "A" * 86 + "==",
            "dev": True,
        }
    return json.dumps({"name": "app", "lockfileVersion": 3, "packages": packages}).encode()


NO_DEPENDENCIES: Files = {"package.json": manifest(), "index.html": b"<p>hi</p>"}
VITE = {"vite": "^5.0.0"}
LOCKED: Files = {
    "package.json": manifest(devDependencies=VITE),
    "package-lock.json": lockfile(VITE),
    "index.html": b"<p>hi</p>",
}
UNLOCKED: Files = {"package.json": manifest(devDependencies=VITE), "index.html": b"<p>hi</p>"}


@dataclass
class Kiln:
    """The parts of one in-process Kiln, and ways to drive builds through them."""

    ctx: Context
    sandbox: FakeSandbox
    redis: fakeredis.FakeRedis

    def script(self, handler: Handler) -> None:
        """What the fake's steps do from now on."""
        self.sandbox.handler = handler

    def record(self, files: Files, *, project: str = "app", root: str | None = None) -> Build:
        """A queued build of ``files`` (its app in ``root``), its source stored, as the API
        leaves it."""
        build = Build(project=project, limits=asdict(LIMITS), root=root)
        self.ctx.storage.write_source(build.id, to_tar(files))
        return self.ctx.store.add(build)

    def run(self, build_id: str, rounds: Rounds | None = None) -> Build:
        """Run the build as a worker would; its record afterwards."""
        BuildRun(build_id, self.ctx, rounds).run()
        return self.ctx.store.get(build_id)

    def build(self, files: Files, rounds: Rounds | None = None) -> Build:
        """Record and run a build of ``files``."""
        return self.run(self.record(files).id, rounds)

    def cancel(self, build_id: str) -> None:
        """Set the cancel flag a running build's worker watches."""
        self.redis.set(cancel_key(build_id), "1")

    def events(self, build_id: str) -> list[Event]:
        """The build's events: its archive once it ended, else the live stream."""
        archived = self.ctx.bus.read_archive(build_id)
        return archived if archived is not None else self.ctx.bus.history(build_id)

    def ends(self, build_id: str) -> list[dict[str, Any]]:
        """The bodies of every ``end`` event of the build."""
        return [e.data for e in self.events(build_id) if e.event == "end"]

    def end(self, build_id: str) -> dict[str, Any]:
        """The one ``end`` body of an ended build, checked to be its public view."""
        ends = self.ends(build_id)
        assert len(ends) == 1, f"{len(ends)} end events"
        public = json.loads(json.dumps(view(self.ctx, self.ctx.store.get(build_id))))
        assert ends[0] == public
        return ends[0]

    def log(self, build_id: str) -> str:
        """Every log line of the build, joined."""
        return "\n".join(e.data["text"] for e in self.events(build_id) if e.event == "log")

    def phases(self, build_id: str) -> list[str]:
        """The phases the build's status events announced, in order."""
        return [e.data["phase"] for e in self.events(build_id) if e.event == "status"]


def unit_settings(var_dir: Path, **overrides: Any) -> Settings:
    """Settings for an in-process Kiln under ``var_dir``: no disk images, no model."""
    values: dict[str, Any] = {
        "var_dir": var_dir,
        "database_url": f"sqlite:///{var_dir / 'kiln.db'}",
        "workspace_mb": 0,  # plain folders: no loop mounts, no root needed
        "min_free_disk_mb": 0,
        "project_concurrency": 0,
        "openai_api_key": "",
        "openai_base_url": "",
        "instance": "unit",
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


def make_kiln(var_dir: Path, **overrides: Any) -> Kiln:
    """A fresh in-process Kiln under ``var_dir``."""
    settings = unit_settings(var_dir, **overrides)
    var_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    SQLModel.metadata.create_all(engine)
    client = fakeredis.FakeRedis()
    sandbox = FakeSandbox()
    ctx = Context.with_parts(
        settings, redis_client=client, sandbox=sandbox, store=BuildStore(engine)
    )
    return Kiln(ctx, sandbox, client)


@pytest.fixture
def kiln(tmp_path: Path) -> Iterator[Kiln]:
    """An in-process Kiln with default settings (dependency layers on)."""
    made = make_kiln(tmp_path / "var")
    yield made
    made.ctx.store.engine.dispose()
