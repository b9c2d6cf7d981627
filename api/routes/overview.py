"""The dashboard's two overview reads: projects at a glance, and operations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from orchestrator.ops import overview

router = APIRouter(prefix="/api/v1", tags=["overview"])


@router.get("/projects")
async def list_projects(ctx: CtxDep) -> dict[str, Any]:
    """Every project: its latest build, its `latest--` preview, recent build times."""
    return {"items": await run_in_threadpool(overview.projects, ctx)}


@router.get("/ops")
async def operations(ctx: CtxDep) -> dict[str, Any]:
    """Workers, queue, results by error code, step-time percentiles, cache hit rate, disk."""
    return await run_in_threadpool(overview.operations, ctx)
