"""A project's feed: one capped Redis stream per project, its oldest entries archived to disk.

Every build of the project writes ``build`` ({id, status, phase}) on each status or phase
change and ``build_end`` (the end body); the dev session writes its ``status``, ``hmr`` and
``error`` events with :func:`publish_project_event`. Ids are Redis stream ids, as for
builds, so ``Last-Event-ID`` resumes across the stream and its archive.

The stream never ends, so instead of being archived at an end it is capped: once it holds
``cap * 1.5`` entries, the writer that notices moves the oldest beyond ``cap`` to the
archive file (under a short lock, appending before trimming, so a reader that looks at the
stream first and the archive second never misses an entry).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis

from orchestrator.errors import ErrorCode, InputError
from orchestrator.live.events import Event, decode_archive, decode_entries

FEED_CAP = 2000
LOCK_S = 30
# Today's slugs (service.project_slug) and the DNS labels of the second-stage contract.
PROJECT = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def project_key(project: str) -> str:
    """The Redis key of a project's feed."""
    return f"kiln:project:{project}:events"


def check_project(project: str) -> str:
    """Validate a project slug taken from a request."""
    if not PROJECT.fullmatch(project):
        raise InputError(f"invalid project {project[:70]!r}", code=ErrorCode.INVALID_PROJECT)
    return project


def build_event(build_id: str, status: str, phase: str) -> dict[str, Any]:
    """The data of a project's ``build`` event."""
    return {"id": build_id, "status": status, "phase": phase}


def publish_project_event(
    client: redis.Redis,
    archive: Path,
    project: str,
    event: str,
    data: dict[str, Any],
    *,
    cap: int = FEED_CAP,
) -> str:
    """Append one event to a project's feed (``archive``: where its oldest entries go,
    ``StorageLayout.feed_archive``); returns its id. For builds and dev sessions."""
    key = project_key(project)
    pipe = client.pipeline(transaction=False)
    pipe.xadd(key, {"event": event, "data": json.dumps(data)})
    pipe.xlen(key)
    raw_id, length = pipe.execute()
    if length > cap + cap // 2:
        archive_oldest(client, archive, project, cap)
    return raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)


def archive_oldest(client: redis.Redis, path: Path, project: str, cap: int) -> int:
    """Move the entries beyond the newest ``cap`` to the archive; returns how many moved."""
    key = project_key(project)
    lock = f"kiln:project:{project}:archiving"
    if not client.set(lock, "1", nx=True, ex=LOCK_S):
        return 0  # another writer is at it
    try:
        excess = int(client.xlen(key)) - cap  # type: ignore[arg-type]
        if excess <= 0:
            return 0
        events = decode_entries(client.xrange(key, count=excess))
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as archive:
            archive.write("".join(e.to_json() + "\n" for e in events))
        ms, seq = events[-1].id.split("-")
        client.xtrim(key, minid=f"{ms}-{int(seq) + 1}")
        return len(events)
    finally:
        client.delete(lock)


def read_feed_archive(path: Path) -> list[Event]:
    """A project's archived feed entries, oldest first (empty when nothing was archived)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    return decode_archive(raw)
