"""Following a build's events for an SSE client: replay, then live, then ``end``.

A finished build is replayed from its archive; a running one from its Redis stream,
then followed with blocking reads. ``Last-Event-ID`` skips what the client has seen.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import anyio.to_thread
import redis.asyncio as aioredis

from orchestrator.live.logbus import Event, decode_entries, id_after, stream_key
from orchestrator.records.models import Build, Status

BLOCK_MS = 5000
BATCH = 500


async def follow(
    client: aioredis.Redis,
    build_id: str,
    *,
    after: str | None,
    archive: Callable[[], list[Event] | None],
    load_build: Callable[[], Build],
    end_body: Callable[[Build], dict[str, object]],
) -> AsyncIterator[Event]:
    """Yield the build's events after ``after`` until (and including) its ``end`` event."""
    archived = await anyio.to_thread.run_sync(archive)
    if archived is not None:
        for event in _after(archived, after):
            yield event
        return
    cursor = after or "0-0"
    key = stream_key(build_id)
    while True:
        reply = await client.xread({key: cursor}, block=BLOCK_MS, count=BATCH)
        if reply:
            for event in decode_entries(reply[0][1]):
                cursor = event.id
                yield event
                if event.event == "end":
                    return
            continue
        # Quiet for a while: check whether the build ended where the stream cannot show it.
        archived = await anyio.to_thread.run_sync(archive)
        if archived is not None:
            for event in _after(archived, cursor):
                yield event
            return
        build = await anyio.to_thread.run_sync(load_build)
        if Status(build.status).finished and not await client.exists(key):
            yield Event(id=f"{_now_ms()}-0", event="end", data=end_body(build))
            return


def _after(events: list[Event], after: str | None) -> list[Event]:
    if after is None:
        return events
    return [e for e in events if id_after(e.id, after)]


def _now_ms() -> int:
    return int(time.time() * 1000)
