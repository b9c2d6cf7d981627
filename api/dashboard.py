"""The dashboard's static files at ``/``: built assets, and index.html for its own routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from orchestrator.storage.artifacts import describe_tree
from orchestrator.storage.manifest import Manifest, cache_control

# Paths the dashboard never answers, so an unknown API path stays a JSON 404.
NOT_DASHBOARD = (
    "api/",
    "docs",
    "redoc",
    "openapi.json",
    "healthz",
    "metrics",
)  # "docs" also covers /docs-assets
NOT_BUILT = """<!doctype html><title>Kiln</title><body style="font-family:sans-serif">
<h1>Kiln</h1><p>The dashboard has not been built. Run <code>./scripts/up</code> (or
<code>npm ci &amp;&amp; npm run build</code> in <code>dashboard/</code>). The API is at
<a href="/docs">/docs</a>.</p></body>"""


def install_dashboard(app: FastAPI, folder: Path) -> None:
    """Serve the built dashboard from ``folder`` for every path the API does not own.

    Its files are listed once (as a build's manifest), so a request probes no disk; a
    dashboard built after the API started is found on the next request."""
    listed: list[Manifest] = []

    def files() -> Manifest | None:
        if not listed and (folder / "index.html").is_file():
            listed.append(describe_tree(folder, "dashboard"))
        return listed[0] if listed else None

    @app.get("/{path:path}", include_in_schema=False)
    def dashboard(path: str) -> Response:
        if path.startswith(NOT_DASHBOARD):
            return Response(
                '{"error": {"code": "not_found", "message": "no such route"}}',
                status_code=404,
                media_type="application/json",
            )
        manifest = files()
        if manifest is None:  # a page says how to build it; a file is simply not there
            if "." in path.rsplit("/", 1)[-1]:
                return Response("not found", status_code=404)
            return HTMLResponse(NOT_BUILT, status_code=503)
        entry = manifest.resolve("/" + path)
        if entry is None:
            return Response("not found", status_code=404)
        return FileResponse(
            folder / entry.path,
            media_type=entry.content_type,
            headers={"Cache-Control": cache_control(entry.path), "ETag": entry.etag},
        )
