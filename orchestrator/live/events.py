"""One event of a stream, and its two encodings: Redis stream entries and the archive (pure).

Every event has the Redis stream id as its SSE id, so ``Last-Event-ID`` resumes exactly,
whether the events come from the live stream or from the archive that outlives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Event:
    """One stream entry: its id, its SSE event name and its JSON data."""

    id: str
    event: str
    data: dict[str, Any]

    def to_json(self) -> str:
        """One line of the archive."""
        return json.dumps({"id": self.id, "event": self.event, "data": self.data})

    # One event object goes to every follower in a process; encode it once for all of them.
    @cached_property
    def data_json(self) -> str:
        """The data as JSON (one line: JSON escapes newlines)."""
        return json.dumps(self.data)

    @cached_property
    def sse(self) -> bytes:
        """The event as an SSE message (no ``id:`` line when it has no id)."""
        head = f"id: {self.id}\r\n" if self.id else ""
        return f"{head}event: {self.event}\r\ndata: {self.data_json}\r\n\r\n".encode()


def decode_entries(entries: Iterable[tuple[Any, dict[Any, Any]]]) -> list[Event]:
    """Turn raw XRANGE/XREAD entries into events."""
    events = []
    for raw_id, fields in entries:
        entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        name = fields.get(b"event", fields.get("event", b"message"))
        data = fields.get(b"data", fields.get("data", b"{}"))
        events.append(
            Event(
                id=entry_id,
                event=name.decode() if isinstance(name, bytes) else name,
                data=json.loads(data),
            )
        )
    return events


def encode_archive(events: list[Event]) -> bytes:
    """The archive's form: one JSON event per line."""
    return "".join(e.to_json() + "\n" for e in events).encode()


def decode_archive(raw: bytes) -> list[Event]:
    """Parse an archive written by ``LogBus.archive``."""
    events = []
    for line in raw.decode("utf-8").splitlines():
        item = json.loads(line)
        events.append(Event(item["id"], item["event"], item["data"]))
    return events
