"""How long a build waited for a worker, and where it stands in line (pure).

A one-file edit can wait 80 s behind other builds and then build in 2 s; a client that
sees only ``duration_ms`` cannot tell. ``queued_ms`` sits beside ``duration_ms`` in the
build body, and ``queue`` says where a queued build stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestrator.records.models import Build, Status, aware, utcnow


def queued_ms(build: Build, now: datetime | None = None) -> int | None:
    """Milliseconds from submit to a worker taking the build (so far, while it waits)."""
    if build.started_at is not None:
        end = aware(build.started_at)
    elif build.status == Status.QUEUED.value:
        end = now or utcnow()
    else:
        return None  # cancelled before any worker took it
    return max(0, int((end - aware(build.created_at)).total_seconds() * 1000))


def queue_fields(
    build: Build, position: int | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The build body's ``queued_ms`` and ``queue: {position, waited_ms}`` (position: 1 is
    next in line; null once a worker has the build or when it is not known)."""
    waited = queued_ms(build, now)
    queued = build.status == Status.QUEUED.value
    return {
        "queued_ms": waited,
        "queue": {"position": position if queued else None, "waited_ms": waited},
    }


def positions(queued_ids: Sequence[str]) -> dict[str, int]:
    """Each queued build's place in line, 1 first, from the ids oldest first."""
    return {build_id: index for index, build_id in enumerate(queued_ids, start=1)}
