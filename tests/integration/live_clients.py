"""Clients for the live channel's tests and benchmark: many SSE followers on one event loop,
and a writer that appends build and feed events straight to Redis (as the worker does)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from httpx_sse import aconnect_sse

from orchestrator.live.logbus import LogBus
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.objects import LocalObjects


@dataclass
class Followed:
    """What one SSE follower received."""

    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # time.time() of each event
    status: int = 0

    @property
    def ids(self) -> list[str]:
        return [i for i, _, _ in self.events]

    @property
    def names(self) -> list[str]:
        return [e for _, e, _ in self.events]


def many_client(url: str) -> httpx.AsyncClient:
    """An async client with no pool cap (each follower holds its own connection)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(30, read=120))


async def follow(
    client: httpx.AsyncClient,
    path: str,
    *,
    last_event_id: str | None = None,
    started: asyncio.Semaphore | None = None,
    stop_at: str | None = "end",
    stop_after: int | None = None,
) -> Followed:
    """Follow an SSE path until the server closes it, ``stop_at`` or ``stop_after`` events;
    ``started`` is released at the first event (so a caller knows the follower is live)."""
    got = Followed()
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with aconnect_sse(client, "GET", path, headers=headers) as source:
        got.status = source.response.status_code
        async for sse in source.aiter_sse():
            if not sse.data:
                continue  # keep-alive
            if started is not None and not got.events:
                started.release()
            got.events.append((sse.id, sse.event, json.loads(sse.data)))
            got.arrived.append(time.time())
            if sse.event == stop_at or sse.event == "error":
                break
            if stop_after is not None and len(got.events) >= stop_after:
                break
    return got


async def wait_started(started: asyncio.Semaphore, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` followers had their first event."""
    async with asyncio.timeout(timeout):
        for _ in range(count):
            await started.acquire()


def writer(redis_url: str, var_dir: Path) -> LogBus:
    """A LogBus on the stack's Redis and artifacts, as a worker would hold."""
    storage = BuildStorage(LocalObjects(var_dir))
    return LogBus(redis.Redis.from_url(redis_url), storage, 600, var_dir / "feeds")


def timed_lines(bus: LogBus, build_id: str, count: int, *, width: int = 40) -> None:
    """Append ``count`` log lines, each carrying the time it was written (ms)."""
    for n in range(count):
        stamp = f"{time.time():.6f}"
        bus.logs(build_id, "building", "stdout", [f"{stamp} line {n} " + "x" * width])


def hub_connections(redis_url: str) -> int:
    """How many hub connections (named kiln-live) use this Redis database."""
    client = redis.Redis.from_url(redis_url)
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    return sum(1 for c in client.client_list() if c.get("name") == "kiln-live" and c["db"] == db)
