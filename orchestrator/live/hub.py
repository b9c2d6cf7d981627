"""One reader per API process, fanning stream events out to every follower in memory.

Design: a single task holds one blocking ``XREAD`` over every followed key at once (plus a
private wake-up key, so a newly followed key joins the read at once). That keeps this
process's Redis connections constant — one for the reader and a small bounded pool for
replays — however many followers and streams there are; a task per stream would hold a
blocked connection per followed build.

Each follower is a :class:`Subscription` with a bounded queue. The reader only ever
appends to queues; a follower whose queue is full is cut (never waited for), and its
consumer then sees :class:`FollowerCut` carrying the last id it took, so the client can
resume with ``Last-Event-ID``.

Joining without gap or repeat: a follower registers on its channel *after* the channel's
read cursor is known, then replays the stream from its own ``after``. Everything up to the
replay is in the replay; everything the reader reads later is in its queue; the
subscription drops whatever is not after the last id it handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from orchestrator.errors import ErrorCode, Unavailable
from orchestrator.live.events import Event
from orchestrator.live.logbus import id_after

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
BLOCK_MS = 5000
OUTAGE_S = 30.0


class StreamSource(Protocol):
    """The I/O seam: where the hub reads streams (Redis, or a fake in tests)."""

    async def read(self, cursors: dict[str, str], block_ms: int) -> list[tuple[str, list[Event]]]:
        """Entries after each key's cursor, waiting up to ``block_ms`` (or until woken)."""
        ...

    async def last_id(self, key: str) -> str:
        """The id of the newest entry of ``key`` ("0-0" when empty or missing)."""
        ...

    async def range(self, key: str, after: str | None) -> list[Event]:
        """Every entry of ``key`` after ``after`` (all of them when None)."""
        ...

    async def wake(self) -> None:
        """Make a pending ``read`` return now, so it can pick up a new key."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class FollowerCut(Exception):
    """Raised to a follower's consumer when the hub had to drop it; it may resume."""

    def __init__(self, code: ErrorCode, message: str, last_id: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.last_id = last_id

    def event(self) -> Event:
        """The ``error`` event to send before closing (its id keeps the resume position)."""
        data = {"code": self.code, "message": self.message, "last_id": self.last_id}
        return Event(id=self.last_id or "", event="error", data=data)


class Subscription:
    """One follower of one stream: a bounded queue of live events and its resume position."""

    def __init__(self, key: str, after: str | None, limit: int = QUEUE_LIMIT) -> None:
        self.key = key
        self.last_id = after
        self._limit = limit
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._cut: FollowerCut | None = None

    @property
    def cut(self) -> bool:
        """True once the hub dropped this follower."""
        return self._cut is not None

    def offer(self, event: Event) -> bool:
        """Queue a live event without waiting; False (and cut) when the queue is full."""
        if self._cut is not None:
            return False
        if len(self._queue) >= self._limit:
            self.close(
                ErrorCode.SLOW_CONSUMER,
                f"follower fell {self._limit} events behind; resume with Last-Event-ID",
            )
            return False
        self._queue.append(event)
        self._ready.set()
        return True

    def close(self, code: ErrorCode, message: str) -> None:
        """Cut the follower: its consumer gets FollowerCut at its next read."""
        if self._cut is None:
            self._cut = FollowerCut(code, message, self.last_id)
            self._queue.clear()
            self._ready.set()

    def admit(self, events: Iterable[Event]) -> list[Event]:
        """The events this follower has not had yet, in order; moves its position past them."""
        fresh = []
        for event in events:
            if self.last_id is None or id_after(event.id, self.last_id):
                fresh.append(event)
                self.last_id = event.id
        return fresh

    def take(self) -> Event | None:
        """The next new queued event, or None when the queue is empty."""
        if self._cut is not None:
            self._cut.last_id = self.last_id
            raise self._cut
        while self._queue:
            event = self._queue.popleft()
            if self.admit([event]):
                return event
        self._ready.clear()
        return None

    async def next(self, timeout: float) -> Event | None:
        """The next new event, waiting up to ``timeout`` s (None when it stayed quiet)."""
        event = self.take()
        if event is not None:
            return event
        # asyncio.timeout, not wait_for: no task per wait (this runs per event per follower).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        return self.take()


class Channel:
    """Every follower of one stream key and where the reader is in that stream."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.cursor: str | None = None  # unknown until the channel is ready
        self.ready = asyncio.Event()
        self.subscriptions: set[Subscription] = set()

    def publish(self, events: list[Event]) -> int:
        """Fan events out to every follower; returns how many followers were cut."""
        cut = 0
        for sub in list(self.subscriptions):
            for event in events:
                if not sub.offer(event):
                    self.subscriptions.discard(sub)
                    cut += 1
                    break
        if events:
            self.cursor = events[-1].id
        return cut


class Hub:
    """Follows stream keys for this process: one reader, many subscriptions."""

    def __init__(
        self,
        source: StreamSource,
        *,
        queue_limit: int = QUEUE_LIMIT,
        block_ms: int = BLOCK_MS,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self.source = source
        self.queue_limit = queue_limit
        self.block_ms = block_ms
        self.outage_s = outage_s
        self.channels: dict[str, Channel] = {}
        self.cut_total = 0
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    def followers(self) -> int:
        """How many subscriptions are open."""
        return sum(len(c.subscriptions) for c in self.channels.values())

    async def subscribe(self, key: str, after: str | None) -> Subscription:
        """Join the live fan-out of ``key``; Unavailable when its position cannot be read."""
        self._start()
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel(key)
            try:
                channel.cursor = await self.source.last_id(key)
            except Exception as exc:
                del self.channels[key]
                channel.ready.set()
                raise Unavailable(f"the event stream cannot be read: {exc}") from exc
            channel.ready.set()
            self._changed.set()
            with contextlib.suppress(Exception):
                await self.source.wake()
        else:
            await channel.ready.wait()
            if self.channels.get(key) is not channel:
                return await self.subscribe(key, after)
        sub = Subscription(key, after, self.queue_limit)
        channel.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Leave the fan-out; the channel goes when its last follower leaves."""
        channel = self.channels.get(sub.key)
        if channel is None:
            return
        channel.subscriptions.discard(sub)
        if not channel.subscriptions and channel.ready.is_set():
            del self.channels[sub.key]

    async def replay(self, sub: Subscription) -> list[Event]:
        """What the stream holds after the follower's position (call right after subscribe)."""
        try:
            return sub.admit(await self.source.range(sub.key, sub.last_id))
        except Exception as exc:
            message = f"the event stream cannot be read: {exc}"
            raise FollowerCut(ErrorCode.UNAVAILABLE, message, sub.last_id) from exc

    async def close(self) -> None:
        """Stop the reader and cut every follower."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._cut_everyone(
            ErrorCode.SHUTTING_DOWN, "the API is restarting; resume with Last-Event-ID"
        )
        with contextlib.suppress(Exception):
            await self.source.close()

    def _start(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        failing_since: float | None = None
        backoff = 0.1
        loop = asyncio.get_running_loop()
        while True:
            cursors = {k: c.cursor for k, c in self.channels.items() if c.cursor is not None}
            if not cursors:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                reply = await self.source.read(cursors, self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Keep every cursor: when Redis answers again the read goes on where it was.
                now = loop.time()
                failing_since = failing_since or now
                log.warning("live hub: read failed (%s); retrying in %.1f s", exc, backoff)
                if now - failing_since > self.outage_s:
                    self._cut_everyone(
                        ErrorCode.UNAVAILABLE, f"the event stream cannot be read: {exc}"
                    )
                    failing_since = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            failing_since, backoff = None, 0.1
            for key, events in reply:
                channel = self.channels.get(key)
                if channel is not None:
                    self.cut_total += channel.publish(events)

    def _cut_everyone(self, code: ErrorCode, message: str) -> None:
        for channel in self.channels.values():
            for sub in channel.subscriptions:
                sub.close(code, message)
                self.cut_total += 1
        self.channels.clear()
