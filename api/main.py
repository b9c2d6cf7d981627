"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Host

from api.errors import as_answered, install_error_handlers
from api.preview import preview_app
from api.routes import builds, generate, meta
from orchestrator.records.db import require_current
from orchestrator.settings import get_settings


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Refuse to start on a database that is behind (DatabaseBehind: `kiln db upgrade`)."""
    require_current()
    yield


class KilnAPI(FastAPI):
    """FastAPI whose OpenAPI document says what Kiln really answers."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document (made once), as Kiln answers: no 422s, errors as JSON."""
        return as_answered(super().openapi())


def create_app() -> FastAPI:
    """Build the application; the preview host route comes first so it never reaches the API."""
    settings = get_settings()
    app = KilnAPI(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
        lifespan=lifespan,
    )
    app.router.routes.append(Host(f"{{build_id}}.{settings.preview_domain}", app=preview_app))
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(meta.router)
    # Move the preview host to the front: FastAPI added its docs routes before it.
    routes = app.router.routes
    routes.sort(key=lambda route: not isinstance(route, Host))
    install_error_handlers(app)
    return app


app = create_app()
