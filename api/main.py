"""The ASGI app: the API on the main host, previews on ``{id}.<preview domain>``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api.errors import as_answered, install_error_handlers
from api.preview import PreviewHost
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
    """Build the API application (previews are answered in front of it, by ``PreviewHost``)."""
    app = KilnAPI(
        title="Kiln",
        version="0.1.0",
        description="Builds untrusted Vite projects in sandbox containers and serves previews.",
        lifespan=lifespan,
    )
    app.include_router(builds.router)
    app.include_router(generate.router)
    app.include_router(meta.router)
    install_error_handlers(app)
    return app


api_app = create_app()
app = PreviewHost(api_app, get_settings().preview_domain)
