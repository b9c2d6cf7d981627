"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from api.auth import TokenGate
from api.dashboard import install_dashboard
from api.deps import api_hub
from api.errors import as_answered, install_error_handlers
from api.preview import PreviewHost
from api.routes import builds, generate, live, meta, ops, overview
from orchestrator.records.db import require_current
from orchestrator.settings import get_settings


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Refuse to start on a database that is behind (DatabaseBehind: `kiln db upgrade`); on
    shutdown, followers get an ``error`` event with their resume id, not a silent close."""
    require_current()
    yield
    if api_hub.cache_info().currsize:
        await api_hub().close()


def describe_as_answered(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document (made once) say what Kiln really answers: no 422s,
    errors as JSON."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        return as_answered(made())

    app.openapi = openapi  # type: ignore[method-assign]


def create_app() -> FastAPI:
    """Build the API application (previews are answered in front of it, by ``PreviewHost``)."""
    settings = get_settings()
    # /docs and /redoc with Swagger UI's and ReDoc's files served from the fastapi-offline
    # package, not a CDN: Kiln hosts often reach no internet. No validator badge either
    # (Swagger UI would fetch it from validator.swagger.io).
    app = FastAPIOffline(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
        lifespan=lifespan,
        static_url="/docs-assets",
        swagger_ui_parameters={"validatorUrl": None},
    )
    describe_as_answered(app)
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(live.router)
    app.include_router(meta.router)
    app.include_router(ops.router)
    app.include_router(overview.router)
    install_dashboard(app, settings.dashboard_dir)  # last: it answers every other path
    install_error_handlers(app)
    if settings.api_token:
        app.add_middleware(
            TokenGate, token=settings.api_token, preview_domain=settings.preview_domain
        )
    if settings.cors_origin_list:
        # Exact origins only; the WebSocket checks the same list (live.protocol.origin_allowed).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "Last-Event-ID", "Idempotency-Key", "Authorization"],
            max_age=600,
        )
    return app


api_app = create_app()
app = PreviewHost(api_app, get_settings().preview_domain)
