"""Code generation: a prompt becomes a build (the model runs in a worker, never here)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from api.errors import error_responses
from api.routes.builds import LimitsIn, submit_reply
from api.schemas import SubmitReply
from orchestrator import service
from orchestrator.records.public import GenerationPublic

router = APIRouter(prefix="/api/v1", tags=["generate"])


class GenerateJSON(BaseModel):
    """What to generate: a prompt, and a template or an earlier build to start from."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=service.MAX_PROMPT_CHARS)
    template: str | None = None
    base_build: str | None = None
    project: str | None = None
    limits: LimitsIn | None = None


@router.post(
    "/generate",
    status_code=202,
    response_model=SubmitReply,
    responses=error_responses(400, 404, 409, 429, 503, 507),
)
async def generate(body: GenerateJSON, ctx: CtxDep) -> SubmitReply:
    """Write (or, from ``base_build``, edit) a project with the model and build it; 202 at once."""
    build = await run_in_threadpool(
        lambda: service.submit_generation(
            ctx,
            body.prompt,
            template=body.template,
            base_build=body.base_build,
            project=body.project,
            limits=body.limits.model_dump() if body.limits else None,
        )
    )
    return submit_reply(ctx, build)


@router.get(
    "/builds/{build_id}/generation",
    response_model=GenerationPublic,
    responses=error_responses(404),
)
def get_generation(build_id: str, ctx: CtxDep) -> Any:
    """A generated build's prompt, every model call with its usage, and the files it wrote."""
    return service.get_generation(ctx, build_id)
