"""Per-build event streams: status and log lines in a Redis stream, archived when the build ends.

Every event has the Redis stream id as its SSE id, so ``Last-Event-ID`` resumes exactly,
whether the events come from the live stream or from the archive that outlives it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from orchestrator.errors import InputError, StorageUnavailable
from orchestrator.live import feed
from orchestrator.live.events import Event, decode_archive, decode_entries, encode_archive
from orchestrator.storage.build_storage import BuildStorage
from orchestrator.storage.layout import EVENTS_ARCHIVE

log = logging.getLogger("kiln.logbus")
MAX_LINE_CHARS = 4000
EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
# CSI/OSC escape sequences, then any other C0/C1 control character but tab (lines come
# already split, so no newline reaches here).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def stream_key(build_id: str) -> str:
    """The Redis key of a build's event stream."""
    return f"kiln:build:{build_id}:events"


def clean_line(text: str) -> str:
    """Make container output safe to show: no terminal escapes or control characters, bounded."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", text))
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS] + " …[line truncated]"
    return text


def check_event_id(value: str | None) -> str | None:
    """Validate a client's ``Last-Event-ID``."""
    if value is None or value == "":
        return None
    if not EVENT_ID.fullmatch(value):
        raise InputError(f"invalid Last-Event-ID {value[:40]!r}")
    return value


def id_after(a: str, b: str) -> bool:
    """True when stream id ``a`` comes after ``b``."""
    ams, aseq = (int(x) for x in a.split("-"))
    bms, bseq = (int(x) for x in b.split("-"))
    return (ams, aseq) > (bms, bseq)


class LogBus:
    """Writes a build's events (the worker and the service) and reads its archive.

    Status changes and the ``end`` event also go to the build's project feed (see
    ``live.feed``); ``project_of`` names a build's project when a caller does not. A feed's
    oldest entries are archived under ``feeds_dir`` (local to the host that trims them).
    """

    def __init__(
        self,
        client: redis.Redis,
        storage: BuildStorage,
        ttl_s: int,
        feeds_dir: Path | None = None,
        project_of: Callable[[str], str | None] | None = None,
    ) -> None:
        self.redis = client
        self.storage = storage
        self.ttl_s = ttl_s
        self.project_of = project_of
        self.feeds_dir = feeds_dir
        self._projects: dict[str, str] = {}  # a build's project never changes

    def publish(self, build_id: str, event: str, data: dict[str, Any]) -> str:
        """Append one event; returns its id. An ``end`` also goes to the project feed."""
        entry_id = self.redis.xadd(stream_key(build_id), {"event": event, "data": json.dumps(data)})
        project = data.get("project")
        if event == "end" and isinstance(project, str):
            self.project_event(project, "build_end", data)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def status(self, build_id: str, status: str, phase: str, project: str | None = None) -> None:
        """Announce a status or phase change, on the build's stream and its project's feed."""
        self.publish(build_id, "status", {"status": status, "phase": phase})
        project = project or self._project(build_id)
        if project:
            self.project_event(project, "build", feed.build_event(build_id, status, phase))

    def project_event(self, project: str, event: str, data: dict[str, Any]) -> str:
        """Append one event to a project's feed (dev sessions use this too); returns its id."""
        return feed.publish_project_event(
            self.redis, self.feed_archive(project), project, event, data
        )

    def feed_archive(self, project: str) -> Path:
        """Where a project's oldest feed entries are archived."""
        if self.feeds_dir is None:
            raise RuntimeError("this LogBus was made without a feeds folder")
        return self.feeds_dir / project / EVENTS_ARCHIVE

    def _project(self, build_id: str) -> str | None:
        if build_id not in self._projects and self.project_of is not None:
            project = self.project_of(build_id)
            if project is None:
                return None
            if len(self._projects) > 10_000:
                self._projects.clear()
            self._projects[build_id] = project
        return self._projects.get(build_id)

    def logs(self, build_id: str, phase: str, stream: str, lines: list[str]) -> None:
        """Append several log lines in one round trip."""
        if not lines:
            return
        pipe = self.redis.pipeline(transaction=False)
        key = stream_key(build_id)
        for line in lines:
            data = {"phase": phase, "stream": stream, "text": clean_line(line)}
            pipe.xadd(key, {"event": "log", "data": json.dumps(data)})
        pipe.execute()

    def note(self, build_id: str, phase: str, text: str) -> None:
        """A line from Kiln itself, marked ``source: kiln`` so a project cannot fake one."""
        data = {"phase": phase, "stream": "stderr", "text": f"[kiln] {text}", "source": "kiln"}
        self.publish(build_id, "log", data)

    def history(self, build_id: str) -> list[Event]:
        """Every event still in the live stream."""
        return decode_entries(self.redis.xrange(stream_key(build_id)))

    def archive(self, build_id: str) -> None:
        """Copy the stream to the artifact store and let the stream expire.

        With the store down the stream is left without expiry: followers still read it
        live, and ``kiln gc`` removes it with the build."""
        events = self.history(build_id)
        try:
            self.storage.write_events(build_id, encode_archive(events))
        except StorageUnavailable as exc:
            log.warning("event log of build %s not archived: %s", build_id, exc.message)
            return
        self.redis.expire(stream_key(build_id), self.ttl_s)

    def read_archive(self, build_id: str) -> list[Event] | None:
        """A finished build's events, or None when there is no archive (yet), or the store
        cannot be read just now (followers then read the live stream, which is kept
        while an archive is missing)."""
        try:
            raw = self.storage.read_events(build_id)
        except StorageUnavailable as exc:
            log.warning("event archive of build %s not readable: %s", build_id, exc.message)
            return None
        return None if raw is None else decode_archive(raw)
