"""Build routes: submit, look up, list, cancel, follow events."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep
from orchestrator import service
from orchestrator.context import Context
from orchestrator.errors import InputError, PayloadTooLarge
from orchestrator.event_stream import follow
from orchestrator.logbus import Event, check_event_id
from orchestrator.models import Build
from orchestrator.project_input import files_from_mapping, files_from_tar

router = APIRouter(prefix="/api/v1", tags=["builds"])

TAR_TYPES = {"application/gzip", "application/x-gzip", "application/x-tar", "application/tar"}
JSON_OVERHEAD = 1.4  # base64 and JSON escaping inflate a file map


class LimitsIn(BaseModel):
    """Per-build limits a client may lower (values above the server's maximums are clamped)."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: float | None = Field(default=None, gt=0)
    cpus: float | None = Field(default=None, gt=0)


class SubmitJSON(BaseModel):
    """The JSON form of a submit."""

    model_config = ConfigDict(extra="forbid")
    files: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    template: str | None = None
    project: str | None = None
    limits: LimitsIn | None = None
    node: int | str | None = None  # a Node major (GET /api/v1/environments lists them)
    supersede: bool = False
    fresh: bool = False  # build even if an identical input already has an artifact


SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SubmitJSON.model_json_schema()},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_submit(body: bytes) -> SubmitJSON:
    """Parse and validate a JSON submit body."""
    try:
        return SubmitJSON.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid submit body: {problems}") from None
    except RecursionError:
        raise InputError("invalid submit body: JSON nested too deeply") from None


def submit_reply(ctx: Context, build: Build) -> dict[str, Any]:
    """The 202 body of a submit."""
    base = f"{ctx.settings.api_url}/api/v1/builds/{build.id}"
    return {
        "id": build.id,
        "status": build.status,
        "project": build.project,
        "reused_from": build.reused_from,
        "links": {
            "self": base,
            "events": f"{base}/events",
            "preview": ctx.settings.preview_url(build.id),
        },
    }


@router.post("/builds", status_code=202, openapi_extra=SUBMIT_DOC)
async def submit_build(
    request: Request,
    ctx: CtxDep,
    project: str | None = None,
    template: str | None = None,
    timeout_s: float | None = None,
    memory_mb: float | None = None,
    cpus: float | None = None,
    supersede: bool = False,
    fresh: bool = False,
    node: str | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """Submit a project as a JSON file map or a tar/tar.gz body; 202 once it is queued.

    ``Idempotency-Key`` makes a retried submit return the build the first one made;
    ``supersede`` cancels the project's older queued builds. A full queue answers 429 with
    ``Retry-After``; a nearly full disk 507."""
    limits = service.input_limits(ctx)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await read_body(request, int(limits.max_total_bytes * JSON_OVERHEAD))
        payload = parse_json_submit(body)
        build = await run_in_threadpool(
            lambda: service.submit_build(
                ctx,
                files_from_mapping(payload.files, limits),
                template=payload.template,
                project=payload.project,
                limits=payload.limits.model_dump() if payload.limits else None,
                idempotency_key=idempotency_key,
                supersede=payload.supersede,
                fresh=payload.fresh,
                node=payload.node,
            )
        )
    elif content_type in TAR_TYPES:
        body = await read_body(request, limits.max_total_bytes)
        requested = {"timeout_s": timeout_s, "memory_mb": memory_mb, "cpus": cpus}
        build = await run_in_threadpool(
            lambda: service.submit_build(
                ctx,
                files_from_tar(body, limits),
                template=template,
                project=project,
                limits=requested,
                idempotency_key=idempotency_key,
                supersede=supersede,
                fresh=fresh,
                node=node,
            )
        )
    else:
        raise InputError(
            "send application/json, application/gzip or application/x-tar "
            f"(got {content_type or 'no content type'!r})",
            code="unsupported_media_type",
        )
    return submit_reply(ctx, build)


@router.get("/builds")
def list_builds(
    ctx: CtxDep,
    project: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Builds, newest first, filtered by project and status."""
    builds = service.list_builds(ctx, project=project, status=status, limit=limit)
    return {"items": service.views(ctx, builds)}


@router.get("/builds/{build_id}")
def get_build(build_id: str, ctx: CtxDep) -> dict[str, Any]:
    """One build's status, phase, timing, error and preview URL."""
    return service.view(ctx, service.get_build(ctx, build_id))


@router.post("/builds/{build_id}/cancel", status_code=202)
def cancel_build(build_id: str, ctx: CtxDep) -> dict[str, Any]:
    """Cancel a queued or running build."""
    return service.view(ctx, service.cancel_build(ctx, build_id))


@router.post("/builds/{build_id}/retry", status_code=202)
def retry_build(build_id: str, ctx: CtxDep) -> dict[str, Any]:
    """A new build of an ended build's source (same project, template and limits)."""
    return submit_reply(ctx, service.retry_build(ctx, build_id))


@router.get("/builds/{build_id}/logs", response_class=PlainTextResponse)
def build_logs(build_id: str, ctx: CtxDep) -> str:
    """The build's log so far as plain text (the SSE stream has it live)."""
    return service.build_log(ctx, build_id)


def to_sse(event: Event) -> ServerSentEvent:
    """One stored event as an SSE message."""
    return ServerSentEvent(data=json.dumps(event.data), event=event.event, id=event.id)


@router.get("/builds/{build_id}/events")
async def build_events(
    build_id: str,
    ctx: CtxDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: str | None = None,
) -> EventSourceResponse:
    """Server-sent events: ``status``, ``log`` and finally ``end``; resumable by Last-Event-ID."""
    resume = check_event_id(last_event_id or after)
    await run_in_threadpool(service.get_build, ctx, build_id)

    async def stream() -> Any:
        events = follow(
            ctx.aredis,
            build_id,
            after=resume,
            archive=lambda: ctx.bus.read_archive(build_id),
            load_build=lambda: service.get_build(ctx, build_id),
            end_body=lambda build: service.view(ctx, build),
        )
        async for event in events:
            yield to_sse(event)

    return EventSourceResponse(
        stream(), ping=ctx.settings.sse_ping_s, headers={"Cache-Control": "no-store"}
    )
