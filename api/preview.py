"""The preview host: ``{build_id}.<preview domain>`` serves that build's dist/ and nothing else."""

from __future__ import annotations

import mimetypes
import re

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from orchestrator.artifacts import DIST, cache_control, resolve_preview
from orchestrator.context import api_context

BUILD_ID = re.compile(r"^[a-f0-9]{16}$")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("application/manifest+json", ".webmanifest")
mimetypes.add_type("image/svg+xml", ".svg")


def preview_response(build_id: str, path: str, method: str) -> Response:
    """Answer one preview request (pure routing over the artifact store)."""
    if method not in ("GET", "HEAD"):
        return PlainTextResponse("method not allowed", status_code=405)
    if not BUILD_ID.match(build_id):
        return PlainTextResponse("no such preview", status_code=404)
    root = api_context().settings.artifacts_dir / build_id / DIST
    if not root.is_dir():
        return PlainTextResponse(
            f"no preview for build {build_id} (it has not succeeded, or does not exist)",
            status_code=404,
        )
    found = resolve_preview(root, path)
    if found is None:
        return PlainTextResponse("not found", status_code=404)
    file, relative = found
    headers = {"Cache-Control": cache_control(relative), "X-Content-Type-Options": "nosniff"}
    return FileResponse(file, headers=headers)


async def preview_app(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI app mounted on the preview host pattern."""
    request = Request(scope, receive)
    build_id = request.path_params.get("build_id", "")
    response = preview_response(build_id, request.url.path, request.method)
    await response(scope, receive, send)
