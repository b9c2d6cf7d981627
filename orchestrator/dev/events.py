"""Following a dev session's events for an SSE client: replay, then live, until ``end``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from orchestrator.live.logbus import Event, decode_entries, dev_stream_key

BLOCK_MS = 5000
BATCH = 500


async def follow_dev(
    client: aioredis.Redis, project: str, *, after: str | None
) -> AsyncIterator[Event]:
    """Yield the session's events after ``after`` until (and including) its ``end``."""
    cursor = after or "0-0"
    key = dev_stream_key(project)
    while True:
        reply = await client.xread({key: cursor}, block=BLOCK_MS, count=BATCH)
        if not reply:
            if not await client.exists(key):
                return  # the session's history expired or was replaced
            continue
        for event in decode_entries(reply[0][1]):
            cursor = event.id
            yield event
            if event.event == "end":
                return
