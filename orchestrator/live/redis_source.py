"""The hub's Redis side: one connection for the blocking read, a small bounded pool for the rest.

Both pools are fixed in size, so this process's Redis connections stay constant however many
followers it serves; a burst of replays waits for a free connection instead of failing.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from orchestrator.live.events import Event, decode_entries

BATCH = 500
COMMAND_CONNECTIONS = 8
WAKE_TTL_S = 3600
CLIENT_NAME = "kiln-live"  # how the hub's connections show in CLIENT LIST
CLIENT_NAME = "kiln-live"  # how the hub's connections show in CLIENT LIST


def reconnecting() -> dict[str, Any]:
    """Connection settings that retry a command on a fresh connection when the pooled one
    was closed under it (a Redis restart), instead of failing the followers at once."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.1), 3),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
    }


class RedisSource:
    """Reads event streams for a Hub."""

    def __init__(self, url: str, *, block_ms: int, command_connections: int = COMMAND_CONNECTIONS):
        timeout = block_ms / 1000 + 10  # a blocked XREAD must not look like a dead socket
        self._reader = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=1,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=5,
                client_name=CLIENT_NAME,
                **reconnecting(),
            )
        )
        self._commands = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=command_connections,
                timeout=30,
                socket_timeout=30,
                socket_connect_timeout=5,
                client_name=CLIENT_NAME,
                **reconnecting(),
            )
        )
        # Each process's own wake-up stream: an entry there ends the pending XREAD early.
        self._wake_key = f"kiln:live:wake:{uuid.uuid4().hex}"
        self._wake_cursor = "0-0"

    async def read(self, cursors: dict[str, str], block_ms: int) -> list[tuple[str, list[Event]]]:
        """One XREAD over every followed key and the wake-up key."""
        streams: dict[str, str] = {**cursors, self._wake_key: self._wake_cursor}
        reply = await self._reader.xread(streams, block=block_ms, count=BATCH)  # type: ignore[arg-type]
        found = []
        for raw_key, entries in reply or []:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if key == self._wake_key:
                last = entries[-1][0]
                self._wake_cursor = last.decode() if isinstance(last, bytes) else last
                continue
            found.append((key, decode_entries(entries)))
        return found

    async def last_id(self, key: str) -> str:
        """The newest entry's id, "0-0" for an empty or missing stream."""
        newest = await self._commands.xrevrange(key, count=1)
        if not newest:
            return "0-0"
        raw = newest[0][0]
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def range(self, key: str, after: str | None) -> list[Event]:
        """Every entry after ``after``, read in batches."""
        events: list[Event] = []
        start = f"({after}" if after else "-"
        while True:
            batch = decode_entries(await self._commands.xrange(key, min=start, count=BATCH))
            events += batch
            if len(batch) < BATCH:
                return events
            start = f"({batch[-1].id}"

    async def wake(self) -> None:
        """Append to the wake-up stream (kept to one entry, expiring if the process dies)."""
        pipe = self._commands.pipeline(transaction=False)
        pipe.xadd(self._wake_key, {"wake": "1"}, maxlen=1, approximate=False)
        pipe.expire(self._wake_key, WAKE_TTL_S)
        await pipe.execute()

    async def close(self) -> None:
        """Drop the wake-up stream and both pools."""
        try:
            await self._commands.delete(self._wake_key)
        finally:
            await self._reader.aclose()  # type: ignore[attr-defined]
            await self._commands.aclose()  # type: ignore[attr-defined]
