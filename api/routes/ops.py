"""Operators' read-only views over HTTP: what waits and runs, and who works.

``kiln queue`` and ``kiln workers`` ask these first, so that they show the installation
the API belongs to wherever the command runs (not the ``var/`` of the caller's folder).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from orchestrator.context import Context
from orchestrator.ops import views

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])


def installation(ctx: Context) -> dict[str, str]:
    """Which Kiln this is, in words an operator recognises (no paths, no credentials)."""
    s = ctx.settings
    return {"api_url": s.api_url, "instance": s.instance, "queue": s.queue_name}


@router.get("/queue")
async def queue(ctx: CtxDep) -> dict[str, Any]:
    """Running and queued builds (from the database) and the Redis queue's counts."""
    summary = await run_in_threadpool(views.queue_summary, ctx)
    return {"installation": installation(ctx), **summary}


@router.get("/workers")
async def workers(ctx: CtxDep) -> dict[str, Any]:
    """The workers registered on this Kiln's queue."""
    rows = await run_in_threadpool(views.workers, ctx)
    return {"installation": installation(ctx), "items": rows}
