"""Following a dev session's events for an SSE client: replay, then live, until ``end``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from orchestrator.live.events import Event
from orchestrator.live.follow import QUIET_S
from orchestrator.live.hub import FollowerCut, Hub
from orchestrator.live.logbus import dev_stream_key


async def follow_dev(hub: Hub, project: str, *, after: str | None) -> AsyncIterator[Event]:
    """Yield the session's events after ``after`` until (and including) its ``end`` (or an
    ``error`` event when the follower is cut: it resumes with the id it carries)."""
    sub = await hub.subscribe(dev_stream_key(project), after)
    try:
        for event in await hub.replay(sub):
            yield event
            if event.event == "end":
                return
        while True:
            live = await sub.next(QUIET_S)
            if live is None:
                continue
            yield live
            if live.event == "end":
                return
    except FollowerCut as cut:
        yield cut.event()
    finally:
        hub.unsubscribe(sub)
