"""An in-memory StreamSource for the hub's tests."""

from __future__ import annotations

import asyncio

from orchestrator.live.events import Event
from orchestrator.live.logbus import id_after


class FakeSource:
    """Streams in a dict; ``read`` blocks until an append or a wake, like XREAD BLOCK."""

    def __init__(self) -> None:
        self.streams: dict[str, list[Event]] = {}
        self.changed = asyncio.Event()
        self.reads = 0
        self.fail_reads = 0  # the next this many reads raise, as when Redis is down
        self._seq = 0

    def append(self, key: str, event: str, **data: object) -> Event:
        self._seq += 1
        entry = Event(f"{self._seq}-0", event, dict(data))
        self.streams.setdefault(key, []).append(entry)
        self.changed.set()
        return entry

    async def read(self, cursors: dict[str, str], block_ms: int) -> list[tuple[str, list[Event]]]:
        self.reads += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise ConnectionError("redis is down")
        for _ in range(2):
            found = [
                (key, [e for e in self.streams.get(key, []) if id_after(e.id, cursor)])
                for key, cursor in cursors.items()
            ]
            found = [(k, events) for k, events in found if events]
            if found:
                return found
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), block_ms / 1000)
            except TimeoutError:
                return []
        return []

    async def last_id(self, key: str) -> str:
        entries = self.streams.get(key)
        return entries[-1].id if entries else "0-0"

    async def range(self, key: str, after: str | None) -> list[Event]:
        entries = self.streams.get(key, [])
        return [e for e in entries if after is None or id_after(e.id, after)]

    async def wake(self) -> None:
        self.changed.set()

    async def close(self) -> None:
        pass
