"""Wiring: the settings, clients and services a process uses, made once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import docker
import redis
import redis.asyncio as aioredis

from orchestrator.db import get_engine
from orchestrator.egress.service import proxy_url
from orchestrator.errors import Unavailable
from orchestrator.logbus import LogBus
from orchestrator.sandbox import Sandbox, SandboxOptions, sandbox_uid
from orchestrator.settings import Settings, get_settings
from orchestrator.store import BuildStore


def cancel_key(build_id: str) -> str:
    """The Redis key a cancel request sets for the worker running ``build_id``."""
    return f"kiln:cancel:{build_id}"


@dataclass
class Context:
    """Everything a request handler or a worker job talks to."""

    settings: Settings

    @cached_property
    def redis(self) -> redis.Redis:
        """The Redis client (queue, event streams, cancel flags)."""
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=30, socket_connect_timeout=5
        )

    @cached_property
    def aredis(self) -> aioredis.Redis:
        """The asyncio Redis client, for following event streams in the API."""
        # Reads block for up to event_stream.BLOCK_MS; the socket must wait longer than that.
        return aioredis.Redis.from_url(
            self.settings.redis_url, socket_timeout=30, socket_connect_timeout=5
        )

    @cached_property
    def store(self) -> BuildStore:
        """Build records."""
        return BuildStore(get_engine(self.settings.db_url))

    @cached_property
    def bus(self) -> LogBus:
        """Build event streams."""
        return LogBus(self.redis, self.settings.artifacts_dir, self.settings.log_stream_ttl_s)

    @cached_property
    def docker(self) -> docker.DockerClient:
        """The Docker engine client; Unavailable when the engine does not answer."""
        try:
            return docker.from_env(timeout=self.settings.docker_timeout_s)
        except docker.errors.DockerException as exc:
            raise Unavailable(f"the Docker engine is not reachable: {exc}") from exc

    @cached_property
    def sandbox(self) -> Sandbox:
        """The sandbox that runs build steps."""
        s = self.settings
        ca_bundle = s.ca_bundle if s.ca_bundle and s.ca_bundle.is_file() else None
        options = SandboxOptions(
            image=s.sandbox_image,
            uid=sandbox_uid(s.sandbox_uid),
            pids_limit=s.pids_limit,
            nofile_limit=s.nofile_limit,
            tmpfs_mb=s.tmpfs_mb,
            registry=s.npm_registry,
            network=s.sandbox_network,
            proxy_url=proxy_url(s),
            runtime=s.build_runtime,
            npm_cache_dir=s.npm_cache_dir,
            ca_bundle=ca_bundle,
            instance=s.instance,
            manager_caches=manager_cache_dirs(s),
        )
        return Sandbox(self.docker, options)

    def cancel_requested(self, build_id: str) -> bool:
        """True once someone asked to cancel ``build_id``."""
        return bool(self.redis.exists(cancel_key(build_id)))


def manager_cache_dirs(settings: Settings) -> dict[str, Path]:
    """Host folders of the package managers' caches (beside the npm cache), made if missing."""
    from orchestrator.build.managers import CACHE_DIRS
    from orchestrator.project.environment import Manager

    root = settings.npm_cache_dir.parent
    found = {}
    for manager, inside in CACHE_DIRS.items():
        if manager != Manager.NPM:
            folder = root / inside.rsplit("/", 1)[1]
            folder.mkdir(parents=True, exist_ok=True)
            found[inside] = folder
    return found


@lru_cache
def api_context() -> Context:
    """The context of this API process."""
    return Context(get_settings())
