"""The dashboard's two overview reads: projects at a glance, and operations."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from api.errors import error_responses
from api.schemas import OpsSummary, ProjectsPublic
from orchestrator.errors import Unavailable
from orchestrator.ops import overview

router = APIRouter(prefix="/api/v1", tags=["overview"])


@router.get("/projects", response_model=ProjectsPublic)
async def list_projects(ctx: CtxDep) -> Any:
    """Every project: its latest build, its `latest--` preview, recent build times."""
    return {"items": await run_in_threadpool(overview.projects, ctx)}


@router.get("/ops", response_model=OpsSummary, responses=error_responses(503))
async def operations(ctx: CtxDep) -> Any:
    """Workers, queue, results by error code, step-time percentiles, cache hit rate, disk."""
    try:
        return await run_in_threadpool(overview.operations, ctx)
    except redis.RedisError as exc:
        raise Unavailable(f"the queue (Redis) is not reachable: {exc}") from exc
