"""Following a build or a project for one client: replay once, then the hub's live fan-out.

A finished build is replayed from its archive; a running one from its Redis stream, then
from the hub. A project's feed is replayed from its archive and stream, then followed
forever. When the hub cuts a follower, or a stream cannot be read, the follower gets a
last ``error`` event whose id (and ``data.last_id``) is where to resume — never a silent
close.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing

import anyio.to_thread

from orchestrator.errors import ErrorCode
from orchestrator.live.events import Event
from orchestrator.live.hub import FollowerCut, Hub, Subscription
from orchestrator.live.logbus import id_after, stream_key
from orchestrator.records.models import Build, Status

log = logging.getLogger(__name__)

QUIET_S = 5.0


async def follow_build(
    hub: Hub,
    build_id: str,
    *,
    after: str | None,
    archive: Callable[[], list[Event] | None],
    load_build: Callable[[], Build],
    end_body: Callable[[Build], dict[str, object]],
) -> AsyncIterator[Event]:
    """Yield the build's events after ``after`` until (and including) ``end``, or an ``error``."""
    archived = await anyio.to_thread.run_sync(archive)
    if archived is not None:
        for event in after_id(archived, after):
            yield event
        return
    sub = await hub.subscribe(stream_key(build_id), after)
    running = _until_end(hub, sub, archive=archive, load_build=load_build, end_body=end_body)
    try:
        # aclosing: a client that goes away closes this generator, and with it the inner one.
        async with aclosing(running) as events:
            async for event in events:
                yield event
    except FollowerCut as cut:
        yield cut.event()
    finally:
        hub.unsubscribe(sub)


async def _until_end(
    hub: Hub,
    sub: Subscription,
    *,
    archive: Callable[[], list[Event] | None],
    load_build: Callable[[], Build],
    end_body: Callable[[Build], dict[str, object]],
) -> AsyncGenerator[Event, None]:
    """A running build's events: the stream's replay, then live ones, until ``end``."""
    for event in await hub.replay(sub):
        yield event
        if event.event == "end":
            return
    while True:
        live = await sub.next(QUIET_S)
        if live is not None:
            yield live
            if live.event == "end":
                return
            continue
        ending = await _ending_while_quiet(hub, sub, archive, load_build, end_body)
        if ending is not None:
            for event in ending:
                yield event
            return


async def _ending_while_quiet(
    hub: Hub,
    sub: Subscription,
    archive: Callable[[], list[Event] | None],
    load_build: Callable[[], Build],
    end_body: Callable[[Build], dict[str, object]],
) -> list[Event] | None:
    """After a quiet spell, the events that end a build that ended where the stream cannot
    show it (archived, or finished with no stream at all); None while it still runs."""
    archived = await anyio.to_thread.run_sync(archive)
    if archived is not None:
        return sub.admit(archived)
    build = await anyio.to_thread.run_sync(load_build)
    if Status(build.status).finished and await hub.source.last_id(sub.key) == "0-0":
        return [Event(id=f"{_now_ms()}-0", event="end", data=end_body(build))]
    return None


async def follow_feed(
    hub: Hub,
    key: str,
    *,
    after: str | None,
    archive: Callable[[], list[Event]],
) -> AsyncIterator[Event]:
    """Yield a project feed's events after ``after``, then live ones until the client goes."""
    sub = await hub.subscribe(key, after)
    try:
        # The stream first, the archive second: entries leave the stream only after they
        # reached the archive, so nothing falls between the two reads.
        try:
            recent = await hub.source.range(key, after)
            archived = await anyio.to_thread.run_sync(archive)
        except Exception as exc:
            raise FollowerCut(
                ErrorCode.UNAVAILABLE, f"the feed cannot be read: {exc}", after
            ) from exc
        older = [e for e in archived if not recent or id_after(recent[0].id, e.id)]
        for event in sub.admit(older + recent):
            yield event
        while True:
            live = await sub.next(QUIET_S)
            if live is not None:
                yield live
    except FollowerCut as cut:
        yield cut.event()
    finally:
        hub.unsubscribe(sub)


async def guarded(events: AsyncIterator[Event]) -> AsyncIterator[Event]:
    """``events``, ending with an ``error`` event (not a silent close) when anything fails."""
    last: str | None = None
    try:
        async for event in events:
            last = event.id or last
            yield event
    except Exception as exc:
        log.exception("live: a follower's stream failed")
        yield FollowerCut(ErrorCode.INTERNAL_ERROR, f"the stream failed: {exc}", last).event()


def after_id(events: list[Event], after: str | None) -> list[Event]:
    """The events after id ``after`` (all when None)."""
    if after is None:
        return events
    return [e for e in events if id_after(e.id, after)]


def _now_ms() -> int:
    return int(time.time() * 1000)
