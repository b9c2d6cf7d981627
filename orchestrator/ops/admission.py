"""Whether a new build may enter: disk space, queue length overall and per project.

The decisions are pure (counts in, error or nothing out); ``storage.disk`` is the probe.
"""

from __future__ import annotations

from orchestrator.errors import InsufficientStorage, Overloaded

RETRY_AFTER_MIN_S = 5
RETRY_AFTER_MAX_S = 120
SECONDS_PER_EXCESS_BUILD = 2


def retry_after_s(queued: int, limit: int) -> int:
    """Seconds a refused client should wait: longer the further the queue is past its limit."""
    excess = max(0, queued - limit + 1)
    return min(RETRY_AFTER_MAX_S, RETRY_AFTER_MIN_S + SECONDS_PER_EXCESS_BUILD * excess)


def check_queue(
    *, queued: int, max_queued: int, project: str, project_queued: int, max_per_project: int
) -> None:
    """Raise Overloaded when one more build would exceed a queue limit (0: no limit)."""
    if max_queued > 0 and queued >= max_queued:
        raise Overloaded(
            f"the build queue is full ({queued} builds waiting); retry later",
            retry_after_s=retry_after_s(queued, max_queued),
        )
    if max_per_project > 0 and project_queued >= max_per_project:
        raise Overloaded(
            f"project {project!r} already has {project_queued} builds waiting; retry later "
            "(or submit with supersede to replace them)",
            retry_after_s=retry_after_s(project_queued, max_per_project),
        )


def check_disk(free_mb: float, min_free_mb: int) -> None:
    """Raise InsufficientStorage when less than ``min_free_mb`` is free."""
    if free_mb < min_free_mb:
        raise InsufficientStorage(
            f"the build server's disk is nearly full ({free_mb:.0f} MB free, "
            f"{min_free_mb} MB needed); new builds are refused until an operator frees space "
            "(`kiln gc`)"
        )
