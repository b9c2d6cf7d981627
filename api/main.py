"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.routing import Host

from api.errors import install_error_handlers
from api.preview import preview_app
from api.routes import builds, generate, meta, ops
from orchestrator.settings import get_settings


def create_app() -> FastAPI:
    """Build the application; the preview host route comes first so it never reaches the API."""
    settings = get_settings()
    # /docs and /redoc with Swagger UI's and ReDoc's files served from the fastapi-offline
    # package, not a CDN: Kiln hosts often reach no internet. No validator badge either
    # (Swagger UI would fetch it from validator.swagger.io).
    app = FastAPIOffline(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
        static_url="/docs-assets",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.router.routes.append(Host(f"{{build_id}}.{settings.preview_domain}", app=preview_app))
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(meta.router)
    app.include_router(ops.router)
    # Move the preview host to the front: FastAPI added its docs routes before it.
    routes = app.router.routes
    routes.sort(key=lambda route: not isinstance(route, Host))
    install_error_handlers(app)
    return app


app = create_app()
