"""Operators' read-only views over HTTP: what waits and runs, and who works.

``kiln queue`` and ``kiln workers`` ask these first, so that they show the installation
the API belongs to wherever the command runs (not the ``var/`` of the caller's folder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import redis
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from api.errors import error_responses
from api.schemas import OpsQueue, OpsWorkers
from orchestrator.context import Context
from orchestrator.errors import Unavailable
from orchestrator.ops import views

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])
T = TypeVar("T")


def _redis_read(read: Callable[[Context], T], ctx: Context) -> T:
    """Run a view that reads Redis; Redis down is 503, not an internal error."""
    try:
        return read(ctx)
    except redis.RedisError as exc:
        raise Unavailable(f"the queue (Redis) is not reachable: {exc}") from exc


def installation(ctx: Context) -> dict[str, str]:
    """Which Kiln this is, in words an operator recognises (no paths, no credentials)."""
    s = ctx.settings
    return {"api_url": s.api_url, "instance": s.instance, "queue": s.queue_name}


@router.get("/queue", response_model=OpsQueue, responses=error_responses(503))
async def queue(ctx: CtxDep) -> Any:
    """Running and queued builds (from the database) and the Redis queue's counts."""
    summary = await run_in_threadpool(_redis_read, views.queue_summary, ctx)
    return {"installation": installation(ctx), **summary}


@router.get("/workers", response_model=OpsWorkers, responses=error_responses(503))
async def workers(ctx: CtxDep) -> Any:
    """The workers registered on this Kiln's queue."""
    rows = await run_in_threadpool(_redis_read, views.workers, ctx)
    return {"installation": installation(ctx), "items": rows}
