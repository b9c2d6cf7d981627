"""Dev-session routes: start, look up, edit, follow, build, stop."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from api.deps import CtxDep, HubDep
from api.errors import error_responses
from api.routes.builds import JSON_OVERHEAD, TAR_TYPES, read_body, sse_response, submit_reply
from api.schemas import SubmitReply
from api.schemas_dev import DevEditReply, DevFilesPublic, DevSessionPublic, DevSessionsPublic
from orchestrator import service
from orchestrator.dev import service as dev
from orchestrator.dev.events import follow_dev
from orchestrator.errors import InputError
from orchestrator.live.logbus import check_event_id
from orchestrator.project.app_folder import check_root
from orchestrator.project.input import files_from_mapping, files_from_tar, input_limits

DEV_EVENTS_DOC = {
    "description": "Server-sent events: `status`, `log`, `hmr`, `error`, then `end` when the "
    "session stops.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}

router = APIRouter(prefix="/api/v1/projects/{project}/dev", tags=["dev sessions"])
sessions_router = APIRouter(prefix="/api/v1/dev", tags=["dev sessions"])


@sessions_router.get("/sessions", response_model=DevSessionsPublic, responses=error_responses(503))
def list_sessions(ctx: CtxDep) -> Any:
    """Every dev session this Kiln knows (running ones, and recently ended ones)."""
    return {"items": dev.list_sessions(ctx)}


class StartJSON(BaseModel):
    """The JSON body of a start: a build's source, or a template plus files."""

    model_config = ConfigDict(extra="forbid")
    from_build: str | None = None
    template: str | None = None
    files: dict[str, str | dict[str, str]] | None = None
    idle_timeout_s: int | None = Field(default=None, gt=0)  # lowers KILN_DEV_IDLE_S
    node: int | str | None = None  # a Node major, as a build submit's (GET /api/v1/environments)
    root: str | None = None  # the app's folder in the project ("front", "apps/web")


class EditsJSON(BaseModel):
    """One batch of edits; ``null`` deletes a file."""

    model_config = ConfigDict(extra="forbid")
    files: dict[str, str | dict[str, str] | None] = Field(default_factory=dict)


def _parse(model: type[BaseModel], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"invalid body: {problems}") from None


@router.post(
    "",
    status_code=202,
    response_model=DevSessionPublic,
    responses=error_responses(400, 404, 409, 413, 429, 503),
)
async def start_session(
    project: str, request: Request, ctx: CtxDep, node: str | None = None, root: str | None = None
) -> Any:
    """Start the project's dev session (202), or return the running one (200).

    ``node`` (in the JSON body, or ``?node=`` with a tarball) picks the Node major as a
    build submit's does; one the image does not offer is 400 unsupported_environment.
    ``root`` (body, or ``?root=``) names the app's folder as a build submit's does; edits
    still name files from the project's top (``front/src/App.tsx``)."""
    limits = input_limits(ctx.settings)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    idle: int | None = None
    if content_type in TAR_TYPES:
        raw = await read_body(request, limits.max_total_bytes)
        root = check_root(root)
        files = await run_in_threadpool(files_from_tar, raw, limits, root)
    else:
        raw = await read_body(request, int(limits.max_total_bytes * JSON_OVERHEAD))
        payload = _parse(StartJSON, raw)
        files = await run_in_threadpool(
            lambda: dev.source_files(
                ctx,
                files=files_from_mapping(payload.files or {}, limits),
                template=payload.template,
                from_build=payload.from_build,
            )
        )
        idle = payload.idle_timeout_s
        node = payload.node
        root = payload.root
        if root is None and payload.from_build:  # a build's source: that build's app folder
            root = await run_in_threadpool(lambda: ctx.store.get(payload.from_build).root)
    session, created = await run_in_threadpool(
        lambda: dev.start(ctx, project, files, idle_timeout_s=idle, node=node, root=root)
    )
    return JSONResponse(dev.body(ctx, session), status_code=202 if created else 200)


@router.get("", response_model=DevSessionPublic, responses=error_responses(404, 503))
def get_session(project: str, ctx: CtxDep) -> Any:
    """The session: status, URL, revision, times, warnings, error."""
    return dev.body(ctx, dev.get(ctx, project))


@router.delete(
    "", status_code=202, response_model=DevSessionPublic, responses=error_responses(404, 409, 503)
)
def stop_session(project: str, ctx: CtxDep) -> Any:
    """Stop the session; its container is gone within 5 s."""
    return dev.body(ctx, dev.stop(ctx, project))


@router.patch(
    "/files", response_model=DevEditReply, responses=error_responses(400, 404, 409, 413, 503)
)
async def edit_files(project: str, request: Request, ctx: CtxDep) -> Any:
    """Apply one batch of edits atomically; answers with the new revision at once."""
    arrived_ms = int(time.time() * 1000)
    limits = input_limits(ctx.settings)
    raw = await read_body(request, int(limits.max_total_bytes * JSON_OVERHEAD))
    payload = _parse(EditsJSON, raw)
    edits = await run_in_threadpool(dev.parse_edits, payload.files, ctx)
    return await run_in_threadpool(dev.apply_edits, ctx, project, edits, arrived_ms)


@router.get("/files", response_model=DevFilesPublic, responses=error_responses(404, 503))
def file_digests(project: str, ctx: CtxDep) -> Any:
    """sha256 of every current file of the session (an extension, for ``kiln dev push``)."""
    return {"files": dev.file_digests(ctx, project)}


@router.post(
    "/build",
    status_code=202,
    response_model=SubmitReply,
    responses=error_responses(404, 429, 503, 507),
)
def build_session(project: str, ctx: CtxDep) -> SubmitReply:
    """A normal build of the session's current files (of its app's folder, ``root``)."""
    files = dev.current_files(ctx, project)
    root = dev.get(ctx, project).root
    build = service.submit_build(ctx, files, service.SubmitOptions(project=project, root=root))
    return submit_reply(ctx, build)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses=error_responses(400, 404, 503, ok=DEV_EVENTS_DOC),
)
async def session_events(
    project: str,
    ctx: CtxDep,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: str | None = None,
) -> EventSourceResponse:
    """SSE: ``status``, ``log``, ``hmr``, ``error``, then ``end`` when the session stops."""
    resume = check_event_id(last_event_id or after)
    await run_in_threadpool(dev.get, ctx, project)
    return sse_response(ctx, follow_dev(hub, project, after=resume))
