"""Wiring: the settings, clients and services a process uses, made once per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import docker
import redis

from orchestrator.errors import NotFound, Unavailable
from orchestrator.live.logbus import LogBus
from orchestrator.records.db import get_engine
from orchestrator.records.store import BuildStore
from orchestrator.sandbox.egress.service import proxy_url
from orchestrator.sandbox.pool import POOL_LABEL, ContainerPool, released_key
from orchestrator.sandbox.protocol import StepRunner
from orchestrator.sandbox.runner import (
    Sandbox,
    SandboxOptions,
    container_config,
    image_toolchain,
    sandbox_uid,
)
from orchestrator.sandbox.step import Limits, Step
from orchestrator.settings import Settings, get_settings
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.objects import StoreConfig, open_objects


def cancel_key(build_id: str) -> str:
    """The Redis key a cancel request sets for the worker running ``build_id``."""
    return f"kiln:cancel:{build_id}"


@dataclass
class Context:
    """Everything a request handler or a worker job talks to."""

    settings: Settings

    @classmethod
    def with_parts(
        cls,
        settings: Settings,
        *,
        redis_client: redis.Redis,
        sandbox: StepRunner | None = None,
        store: BuildStore | None = None,
    ) -> Context:
        """A context with its Redis client (step runner, store) given: fakes in unit tests."""
        ctx = cls(settings)
        parts = {"redis": redis_client, "sandbox": sandbox, "store": store}
        # What the cached properties below would have made.
        vars(ctx).update({name: part for name, part in parts.items() if part is not None})
        return ctx

    @cached_property
    def redis(self) -> redis.Redis:
        """The Redis client (queue, event streams, cancel flags)."""
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=30, socket_connect_timeout=5
        )

    @cached_property
    def storage(self) -> BuildStorage:
        """Where builds' sources, artifacts and event archives are stored (folder or S3)."""
        return open_storage(self.settings)

    @cached_property
    def preview_storage(self) -> BuildStorage:
        """The same store for serving previews: fewer, quicker tries, so a request that
        cannot be answered gets its 503 in about a second, not after a publish's backoff."""
        return open_storage(self.settings, attempts=2, backoff_s=0.2, timeout_s=3.0)

    @cached_property
    def store(self) -> BuildStore:
        """Build records."""
        return BuildStore(get_engine(self.settings.db_url))

    @cached_property
    def bus(self) -> LogBus:
        """Build event streams."""
        return LogBus(
            self.redis,
            self.storage,
            self.settings.log_stream_ttl_s,
            feeds_dir=self.settings.var_dir.resolve() / "feeds",
            project_of=self._project_of,
        )

    def _project_of(self, build_id: str) -> str | None:
        try:
            return self.store.get(build_id).project
        except NotFound:
            return None

    @cached_property
    def docker(self) -> docker.DockerClient:
        """The Docker engine client; Unavailable when the engine does not answer."""
        try:
            return docker.from_env(timeout=self.settings.docker_timeout_s)
        except docker.errors.DockerException as exc:
            raise Unavailable(f"the Docker engine is not reachable: {exc}") from exc

    @cached_property
    def sandbox(self) -> StepRunner:
        """The sandbox that runs build steps."""
        return Sandbox(self.docker, self.sandbox_options, pool=self.container_pool)

    @cached_property
    def sandbox_options(self) -> SandboxOptions:
        """The sandbox's server-wide settings."""
        s = self.settings
        ca_bundle = s.ca_bundle if s.ca_bundle and s.ca_bundle.is_file() else None
        return SandboxOptions(
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
            dev_runtime=s.dev_runtime or s.build_runtime,
            facts_dir=s.var_dir / "cache" / "images",
        )

    @cached_property
    def container_pool(self) -> ContainerPool | None:
        """This host's idle containers (``sandbox/pool``); None when they are off (or the
        worker is not root, and so cannot mount into them)."""
        s = self.settings
        if s.container_pool <= 0 or os.geteuid() != 0:
            return None
        limits = Limits(s.timeout_s, s.memory_mb, s.cpus)
        options = self.sandbox_options

        def make_config(step: Step, folder: Path) -> dict[str, Any]:
            return container_config(
                step, build_id=POOL_LABEL, limits=limits, workspace=folder, options=options
            )

        return ContainerPool(
            self.docker,
            s.var_dir / "pool",
            s.container_pool,
            limits,
            make_config=make_config,
            image_id=lambda: image_toolchain(self.docker, s.sandbox_image).image_id,
            released=self._slot_released,
            instance=s.instance,
        )

    def _slot_released(self, slot: str) -> None:
        """Tell this host's pool keepers that ``slot`` needs a fresh container (a short
        list that expires: nobody may be listening)."""
        key = released_key(self.settings.instance)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, slot)
        pipe.ltrim(key, -64, -1)
        pipe.expire(key, 60)
        pipe.execute()

    def cancel_requested(self, build_id: str) -> bool:
        """True once someone asked to cancel ``build_id``."""
        return bool(self.redis.exists(cancel_key(build_id)))


def manager_cache_dirs(settings: Settings) -> dict[str, Path]:
    """Host folders of the package managers' caches (beside the npm cache), made if missing."""
    from orchestrator.project.environment import Manager
    from orchestrator.sandbox.caches import CACHE_DIRS

    root = settings.npm_cache_dir.parent
    found = {}
    for manager, inside in CACHE_DIRS.items():
        if manager != Manager.NPM:
            folder = root / inside.rsplit("/", 1)[1]
            folder.mkdir(parents=True, exist_ok=True)
            found[inside] = folder
    return found


def open_storage(
    settings: Settings,
    *,
    attempts: int | None = None,
    backoff_s: float | None = None,
    timeout_s: float | None = None,
) -> BuildStorage:
    """The build storage the settings name (the folder var/ or ``s3://bucket/prefix``)."""
    store = StoreConfig.from_settings(settings)
    store = replace(
        store,
        timeout_s=store.timeout_s if timeout_s is None else min(timeout_s, store.timeout_s),
        attempts=store.attempts if attempts is None else min(attempts, store.attempts),
        backoff_s=store.backoff_s if backoff_s is None else backoff_s,
    )
    return BuildStorage(open_objects(store, settings.var_dir))


@lru_cache
def api_context() -> Context:
    """The context of this API process."""
    return Context(get_settings())
