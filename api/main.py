"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Host

from api.auth import TokenGate
from api.dashboard import install_dashboard
from api.errors import install_error_handlers
from api.preview import preview_app
from api.routes import builds, generate, meta, overview
from orchestrator.settings import get_settings


def create_app() -> FastAPI:
    """Build the application; the preview host route comes first so it never reaches the API."""
    settings = get_settings()
    app = FastAPI(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
    )
    app.router.routes.append(Host(f"{{build_id}}.{settings.preview_domain}", app=preview_app))
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(meta.router)
    app.include_router(overview.router)
    install_dashboard(app, settings.dashboard_dir)  # last: it answers every other path
    # Move the preview host to the front: FastAPI added its docs routes before it.
    routes = app.router.routes
    routes.sort(key=lambda route: not isinstance(route, Host))
    install_error_handlers(app)
    if settings.api_token:
        app.add_middleware(
            TokenGate, token=settings.api_token, preview_domain=settings.preview_domain
        )
    return app


app = create_app()
