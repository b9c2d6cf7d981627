"""The preview host: ``{build_id}.<preview domain>`` serves that build's dist/ and nothing else."""

from __future__ import annotations

import mimetypes
import re
from html import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from orchestrator.builds.queue_wait import positions, queued_ms
from orchestrator.context import api_context
from orchestrator.errors import NotFound
from orchestrator.records.models import Build, Status
from orchestrator.storage.artifacts import cache_control, resolve_preview

BUILD_ID = re.compile(r"[a-f0-9]{16}")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("image/svg+xml", ".svg")


def preview_response(build_id: str, path: str, method: str) -> Response:
    """Answer one preview request from the artifact store (or a status page)."""
    if method not in ("GET", "HEAD"):
        return PlainTextResponse("method not allowed", status_code=405)
    if not BUILD_ID.fullmatch(build_id):
        return PlainTextResponse("no such preview", status_code=404)
    ctx = api_context()
    root = ctx.layout.dist(build_id)
    if not root.is_dir():
        try:
            build = ctx.store.get(build_id)
            queued = build.status == Status.QUEUED.value
            return status_page(build, positions(ctx.store.queued_ids()) if queued else None)
        except NotFound:
            return PlainTextResponse(f"no build {build_id}", status_code=404)
    found = resolve_preview(root, path)
    if found is None:
        return PlainTextResponse("not found", status_code=404)
    file, relative = found
    headers = {"Cache-Control": cache_control(relative), "X-Content-Type-Options": "nosniff"}
    return FileResponse(file, headers=headers)


def waiting_words(build: Build, places: dict[str, int] | None) -> str:
    """``queued: number 3 in line, waiting 12 s`` (or just the phase once it runs)."""
    if build.status != Status.QUEUED.value:
        return escape(build.phase)
    waited = (queued_ms(build) or 0) / 1000
    place = (places or {}).get(build.id)
    where = f"number {place} in line, " if place else ""
    return f"queued: {where}waiting {waited:.0f} s for a worker"


def status_page(build: Build, places: dict[str, int] | None = None) -> HTMLResponse:
    """What the preview URL shows before (or instead of) the app: progress, or the error.

    Clients open the preview as soon as they submit; a building page refreshes itself
    until the app is there. Everything from the build is escaped.
    """
    if not Status(build.status).finished:
        title = "Building…"
        body = f"<p>Build <code>{build.id}</code> is {waiting_words(build, places)}.</p>"
        refresh = '<meta http-equiv="refresh" content="2">'
        status_code, headers = 503, {"Retry-After": "2", "Cache-Control": "no-store"}
    else:
        title = f"Build {escape(build.status)}"
        message = escape(build.error_message or "no output was published")
        tail = escape(build.error_log_tail or "")
        body = (
            f"<p>Build <code>{build.id}</code> ended <b>{escape(build.status)}</b>"
            f" ({escape(build.error_code or '')}): {message}</p><pre>{tail}</pre>"
        )
        refresh = ""
        status_code, headers = 404, {"Cache-Control": "no-store"}
    page = (
        f"<!doctype html><html><head><meta charset=utf-8>{refresh}<title>{title}</title>"
        "<style>body{font:16px system-ui;margin:3rem auto;max-width:48rem;color:#222}"
        "pre{background:#f4f4f4;padding:1rem;overflow:auto;font-size:13px}</style>"
        f"</head><body><h1>{title}</h1>{body}</body></html>"
    )
    return HTMLResponse(page, status_code=status_code, headers=headers)


async def preview_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app mounted on the preview host pattern."""
    request = Request(scope, receive)
    build_id = request.path_params.get("build_id", "")
    response = await run_in_threadpool(preview_response, build_id, request.url.path, request.method)
    await response(scope, receive, send)
