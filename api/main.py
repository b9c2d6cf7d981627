"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.preview import PreviewHost
from api.routes import builds, generate, meta
from orchestrator.settings import get_settings


def create_app() -> FastAPI:
    """Build the API application (previews are answered in front of it, by ``PreviewHost``)."""
    app = FastAPI(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
    )
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(meta.router)
    install_error_handlers(app)
    return app


api_app = create_app()
app = PreviewHost(api_app, get_settings().preview_domain)
