"""Operators' read-only views over HTTP: what waits and runs, and who works.

``kiln queue`` and ``kiln workers`` ask these first, so that they show the installation
the API belongs to wherever the command runs (not the ``var/`` of the caller's folder).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from orchestrator.context import Context
from orchestrator.ops import views

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])


class Installation(BaseModel):
    """Which Kiln answers, in words an operator recognises (no paths, no credentials)."""

    api_url: str
    instance: str
    queue: str


class QueuedBuild(BaseModel):
    """A running or queued build, as ``kiln queue`` lists it."""

    id: str
    project: str
    status: str
    phase: str
    worker: str | None
    attempts: int
    age_s: float


class QueueView(BaseModel):
    """What waits and runs: counts from the database (the truth) and from Redis."""

    installation: Installation
    draining: bool
    queued: int
    running: int
    redis_queue_length: int
    redis_started: int
    redis_failed: int
    oldest_wait_s: float
    builds: list[QueuedBuild]


class WorkerRow(BaseModel):
    """One RQ worker on Kiln's queue."""

    name: str
    state: str
    build: str | None
    last_heartbeat: str | None
    succeeded_jobs: int
    failed_jobs: int


class WorkersView(BaseModel):
    """The workers registered on this Kiln's queue."""

    installation: Installation
    items: list[WorkerRow]


def installation(ctx: Context) -> Installation:
    """Which Kiln this is."""
    s = ctx.settings
    return Installation(api_url=s.api_url, instance=s.instance, queue=s.queue_name)


@router.get("/queue", response_model=QueueView)
async def queue(ctx: CtxDep) -> QueueView:
    """Running and queued builds (from the database) and the Redis queue's counts."""
    summary = await run_in_threadpool(views.queue_summary, ctx)
    return QueueView(installation=installation(ctx), **summary)


@router.get("/workers", response_model=WorkersView)
async def workers(ctx: CtxDep) -> WorkersView:
    """The workers registered on this Kiln's queue."""
    rows = await run_in_threadpool(views.workers, ctx)
    return WorkersView(installation=installation(ctx), items=[WorkerRow(**r) for r in rows])
