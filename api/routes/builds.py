"""Build routes: submit, look up, list, cancel, follow events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.deps import CtxDep, HubDep
from api.errors import error_responses
from api.schemas import SubmitLinks, SubmitReply
from orchestrator import service
from orchestrator.context import Context
from orchestrator.errors import InputError, PayloadTooLarge, UnsupportedMediaType
from orchestrator.live.events import Event
from orchestrator.live.follow import follow_build, guarded
from orchestrator.live.hub import Hub
from orchestrator.live.logbus import check_event_id
from orchestrator.project.app_folder import check_root
from orchestrator.project.input import (
    MB,
    Files,
    InputLimits,
    files_from_mapping,
    files_from_tar,
    input_limits,
    too_large,
)
from orchestrator.records.models import Build, Status
from orchestrator.records.public import BuildPublic, BuildsPublic
from orchestrator.service import SubmitOptions

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
    env: dict[str, str] | None = None  # build settings for the build step (names shown only)
    root: str | None = None  # the app's folder inside the project ("front", "apps/web")


# LimitsIn is in the document's components (GenerateJSON refers to it too).
SUBMIT_JSON_SCHEMA = {
    k: v
    for k, v in SubmitJSON.model_json_schema(ref_template="#/components/schemas/{model}").items()
    if k != "$defs"
}
SUBMIT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SUBMIT_JSON_SCHEMA},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            "application/x-tar": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large("the request body", int(declared), limit, "KILN_MAX_UPLOAD_MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the request body is larger than {limit / MB:g} MB, the limit "
                "(KILN_MAX_UPLOAD_MB; a JSON body may be 1.4 times the project's size)"
            )
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


def parse_env_header(value: str | None) -> dict[str, Any] | None:
    """A tarball submit's build settings: the ``Kiln-Env`` header, a JSON object."""
    if not value:
        return None
    try:
        env = json.loads(value)
    except ValueError:
        raise InputError("the Kiln-Env header must be a JSON object of strings") from None
    if not isinstance(env, dict):
        raise InputError("the Kiln-Env header must be a JSON object of strings")
    return env


def submit_reply(ctx: Context, build: Build) -> SubmitReply:
    """The 202 body of a submit."""
    base = f"{ctx.settings.api_url}/api/v1/builds/{build.id}"
    return SubmitReply(
        id=build.id,
        status=Status(build.status),
        project=build.project,
        reused_from=build.reused_from,
        links=SubmitLinks(
            self=base, events=f"{base}/events", preview=ctx.settings.preview_url(build.id)
        ),
    )


async def read_submission(
    request: Request, limits: InputLimits, query: SubmitOptions
) -> tuple[Callable[[], Files], SubmitOptions]:
    """The submit's files (decoded when called, in a worker thread) and options, from a JSON
    body or a tarball body with ``query``; InputError for any other content type."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await read_body(request, int(limits.max_total_bytes * JSON_OVERHEAD))
        payload = parse_json_submit(body)
        options = SubmitOptions(
            template=payload.template,
            project=payload.project,
            limits=payload.limits.model_dump() if payload.limits else None,
            supersede=payload.supersede,
            fresh=payload.fresh,
            env=payload.env,
            node=payload.node,
            root=payload.root,
        )
        return lambda: files_from_mapping(payload.files, limits), options
    if content_type in TAR_TYPES:
        tarball = await read_body(request, limits.max_total_bytes)
        root = check_root(query.root)
        return lambda: files_from_tar(tarball, limits, root), query
    raise UnsupportedMediaType(
        "send application/json, application/gzip or application/x-tar "
        f"(got {content_type or 'no content type'!r})"
    )


@router.post(
    "/builds",
    status_code=202,
    response_model=SubmitReply,
    responses=error_responses(400, 404, 413, 415, 429, 503, 507),
    openapi_extra=SUBMIT_DOC,
)
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
    root: str | None = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    kiln_env: Annotated[str | None, Header(alias="Kiln-Env")] = None,
) -> SubmitReply:
    """Submit a project as a JSON file map or a tar/tar.gz body; 202 once it is queued.

    ``Idempotency-Key`` makes a retried submit return the build the first one made;
    ``supersede`` cancels the project's older queued builds; ``root`` names the app's
    folder inside the project (``front``, ``apps/web``, a workspace member). A full queue
    answers 429 with ``Retry-After``; a nearly full disk 507. With a tarball, the options are query
    parameters; with JSON, they are in the body."""
    query = SubmitOptions(
        template=template,
        project=project,
        limits={"timeout_s": timeout_s, "memory_mb": memory_mb, "cpus": cpus},
        supersede=supersede,
        fresh=fresh,
        env=parse_env_header(kiln_env),
        node=node,
        root=root,
    )
    files, options = await read_submission(request, input_limits(ctx.settings), query)
    build = await run_in_threadpool(
        lambda: service.submit_build(ctx, files(), options, idempotency_key=idempotency_key)
    )
    return submit_reply(ctx, build)


@router.get("/builds", response_model=BuildsPublic, responses=error_responses(400))
def list_builds(
    ctx: CtxDep,
    project: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Builds, newest first, filtered by project and status."""
    builds = service.list_builds(ctx, project=project, status=status, limit=limit)
    return {"items": service.views(ctx, builds)}


@router.get("/builds/{build_id}", response_model=BuildPublic, responses=error_responses(404))
def get_build(build_id: str, ctx: CtxDep) -> Any:
    """One build's status, phase, timing, error and preview URL."""
    return service.view(ctx, service.get_build(ctx, build_id))


@router.post(
    "/builds/{build_id}/cancel",
    status_code=202,
    response_model=BuildPublic,
    responses=error_responses(404, 409),
)
def cancel_build(build_id: str, ctx: CtxDep) -> Any:
    """Cancel a queued or running build."""
    return service.view(ctx, service.cancel_build(ctx, build_id))


@router.post(
    "/builds/{build_id}/retry",
    status_code=202,
    response_model=SubmitReply,
    responses=error_responses(404, 409, 429, 503, 507),
)
def retry_build(build_id: str, ctx: CtxDep) -> SubmitReply:
    """A new build of an ended build's source (same project, template and limits)."""
    return submit_reply(ctx, service.retry_build(ctx, build_id))


NDJSON = "application/x-ndjson"


@router.get(
    "/builds/{build_id}/logs",
    response_class=PlainTextResponse,
    responses=error_responses(
        404,
        ok={
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                NDJSON: {"schema": {"type": "string"}},
            }
        },
    ),
)
def build_logs(
    build_id: str,
    ctx: CtxDep,
    format: Annotated[
        Literal["text", "ndjson"],
        Query(description="text: the log lines; ndjson: every event so far, one JSON a line."),
    ] = "text",
) -> Response:
    """The build's log so far as plain text, or all its events as NDJSON (the SSE stream
    has them live)."""
    if format == "ndjson":
        return Response(service.build_events_ndjson(ctx, build_id), media_type=NDJSON)
    return PlainTextResponse(service.build_log(ctx, build_id))


def sse_response(ctx: Context, events: AsyncIterator[Event]) -> EventSourceResponse:
    """Stream events as SSE; a client that takes nothing for a while is dropped."""

    async def stream() -> AsyncIterator[bytes]:
        async for event in guarded(events):
            yield event.sse

    return EventSourceResponse(
        stream(),
        ping=ctx.settings.sse_ping_s,
        send_timeout=ctx.settings.live_send_timeout_s,
        headers={"Cache-Control": "no-store"},
    )


def build_follower(
    ctx: Context, hub: Hub, build_id: str, after: str | None
) -> AsyncIterator[Event]:
    """A build's events after ``after`` (replay, live, ``end``) — for SSE and the WebSocket."""
    return follow_build(
        hub,
        build_id,
        after=after,
        archive=lambda: ctx.bus.read_archive(build_id),
        load_build=lambda: service.get_build(ctx, build_id),
        end_body=lambda build: service.view(ctx, build),
    )


BUILD_EVENTS_DOC: dict[str, Any] = {
    "description": (
        '`text/event-stream`. `event: status`, data `{"status", "phase"}`; '
        '`event: log`, data `{"phase", "stream", "text"}`; finally `event: end`, '
        "data: the build's body (BuildPublic, as GET /api/v1/builds/{id}), then the stream "
        "closes. Every event has an `id:`; `Last-Event-ID` (or `?after=`) resumes after it."
    ),
    "content": {
        "text/event-stream": {
            "schema": {"type": "string"},
            "example": 'id: 1700000000000-0\nevent: status\ndata: {"status": "queued", '
            '"phase": "queued"}\n\n',
        }
    },
}


@router.get(
    "/builds/{build_id}/events",
    response_class=EventSourceResponse,
    responses=error_responses(400, 404, ok=BUILD_EVENTS_DOC),
)
async def build_events(
    build_id: str,
    ctx: CtxDep,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: str | None = None,
) -> EventSourceResponse:
    """Server-sent events: ``status``, ``log`` and finally ``end``; resumable by Last-Event-ID."""
    resume = check_event_id(last_event_id or after)
    await run_in_threadpool(service.get_build, ctx, build_id)
    return sse_response(ctx, build_follower(ctx, hub, build_id, resume))
