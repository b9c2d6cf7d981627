"""Operator views and actions behind ``kiln workers``, ``queue``, ``drain`` and ``gc``.

They run on a Kiln host against its Redis, database, Docker engine and var/ folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rq import Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.suspension import is_suspended, resume, suspend

from orchestrator.builds.jobs import build_queue
from orchestrator.context import Context
from orchestrator.live.logbus import stream_key
from orchestrator.ops import janitor
from orchestrator.records.models import Build, Status, aware, utcnow


def workers(ctx: Context) -> list[dict[str, Any]]:
    """The workers registered on Kiln's queue: name, state, current build, last heartbeat."""
    rows = []
    q = build_queue(ctx.redis, ctx.settings.queue_name)
    for worker in Worker.all(queue=q):
        beat = worker.last_heartbeat
        rows.append(
            {
                "name": worker.name,
                "state": worker.get_state(),
                "build": worker.get_current_job_id(),
                "last_heartbeat": beat.isoformat(timespec="seconds") if beat else None,
                "succeeded_jobs": worker.successful_job_count,
                "failed_jobs": worker.failed_job_count,
            }
        )
    return rows


def queue_summary(ctx: Context) -> dict[str, Any]:
    """What waits and runs: counts from the database (the truth) and from Redis."""
    q = build_queue(ctx.redis, ctx.settings.queue_name)
    now = utcnow()
    waiting = ctx.store.queued_before(now + timedelta(seconds=1))
    running = ctx.store.list(status=Status.RUNNING, limit=500)
    return {
        "draining": bool(is_suspended(ctx.redis)),
        "queued": len(waiting),
        "running": len(running),
        "redis_queue_length": q.count,
        "redis_started": StartedJobRegistry(queue=q).count,
        "redis_failed": FailedJobRegistry(queue=q).count,
        "oldest_wait_s": round((now - aware(waiting[0].created_at)).total_seconds(), 1)
        if waiting
        else 0.0,
        "builds": [
            {
                "id": b.id,
                "project": b.project,
                "status": b.status,
                "phase": b.phase,
                "worker": b.worker,
                "attempts": b.attempts,
                "age_s": round((now - aware(b.created_at)).total_seconds(), 1),
            }
            for b in [*running, *waiting]
        ],
    }


def drain(ctx: Context) -> None:
    """Workers take no new build (running ones finish); ``undrain`` resumes."""
    suspend(ctx.redis)


def undrain(ctx: Context) -> None:
    """Let workers take builds again after ``drain``."""
    resume(ctx.redis)


def running_count(ctx: Context) -> int:
    """How many builds run now."""
    return ctx.store.count(status=Status.RUNNING)


@dataclass
class GcReport:
    """What ``gc`` removed (or would remove, on a dry run)."""

    builds: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    cache_bytes_freed: int = 0


def select_for_gc(
    candidates: list[Build], keep_ids: dict[str, set[str]], cutoff: datetime
) -> list[Build]:
    """Ended builds older than ``cutoff`` that are not among their project's newest kept ones."""
    return [
        b
        for b in candidates
        if aware(b.created_at) < cutoff and b.id not in keep_ids.get(b.project, set())
    ]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def gc(
    ctx: Context,
    *,
    keep: int | None = None,
    keep_days: float | None = None,
    dry_run: bool = False,
    caches: bool = False,
) -> GcReport:
    """Remove artifacts, archived logs and sources of old ended builds (keeping the newest
    ``keep`` per project and everything younger than ``keep_days``), orphan containers and
    networks of this instance, and with ``caches`` the shared npm cache."""
    s = ctx.settings
    keep = s.keep_builds if keep is None else keep
    keep_days = s.keep_days if keep_days is None else keep_days
    cutoff = utcnow() - timedelta(days=keep_days)
    candidates = ctx.store.finished_before(cutoff)
    keep_ids = {p: ctx.store.newest_finished_ids(p, keep) for p in {b.project for b in candidates}}
    report = GcReport()
    for build in select_for_gc(candidates, keep_ids, cutoff):
        size = ctx.storage.stored_bytes(build.id)
        if size == 0:
            continue  # collected before
        report.builds.append(build.id)
        report.bytes_freed += size
        if dry_run:
            continue
        ctx.storage.remove_build(build.id)
        ctx.redis.delete(stream_key(build.id))
    if not dry_run:
        swept = janitor.sweep(ctx)
        report.containers, report.networks = swept.containers, swept.networks
    if caches and dry_run and s.npm_cache_dir.is_dir():
        report.cache_bytes_freed = _size(s.npm_cache_dir)
    elif caches:
        # Through the cache's own collector: it skips layers a build holds and the npm
        # cache while an install step uses it (orchestrator/cache/gc.py).
        from orchestrator.cache import gc as cache_gc

        emptied = cache_gc.collect(s, layer_budget_mb=0, npm_budget_mb=0)
        report.cache_bytes_freed = emptied.npm_bytes_freed + emptied.layer_bytes_freed
    return report
