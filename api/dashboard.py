"""The dashboard's static files at ``/``: built assets, and index.html for its own routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response

from orchestrator.storage.artifacts import resolve_preview

# Paths the dashboard never answers, so an unknown API path stays a JSON 404.
NOT_DASHBOARD = ("api/", "docs", "redoc", "openapi.json", "healthz", "metrics")
NOT_BUILT = """<!doctype html><title>Kiln</title><body style="font-family:sans-serif">
<h1>Kiln</h1><p>The dashboard has not been built. Run <code>./scripts/up</code> (or
<code>npm ci &amp;&amp; npm run build</code> in <code>dashboard/</code>). The API is at
<a href="/docs">/docs</a>.</p></body>"""


def install_dashboard(app: FastAPI, folder: Path) -> None:
    """Serve the built dashboard from ``folder`` for every path the API does not own."""

    @app.get("/{path:path}", include_in_schema=False)
    def dashboard(path: str) -> Response:
        if path.startswith(NOT_DASHBOARD):
            return Response(
                '{"error": {"code": "not_found", "message": "no such route"}}',
                status_code=404,
                media_type="application/json",
            )
        if not (folder / "index.html").is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        resolved = resolve_preview(folder, "/" + path)
        if resolved is None:
            return Response("not found", status_code=404)
        file, relative = resolved
        cache = (
            "public, max-age=31536000, immutable" if relative.startswith("assets/") else "no-cache"
        )
        return FileResponse(file, headers={"Cache-Control": cache})
