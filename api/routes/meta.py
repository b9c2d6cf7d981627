"""Templates and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import CtxDep
from orchestrator import service

router = APIRouter()


@router.get("/api/v1/templates", tags=["templates"])
def list_templates(ctx: CtxDep) -> dict[str, Any]:
    """The bundled templates a submit can start from."""
    return {"items": service.list_templates(ctx)}


def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        probe()
        return name, "ok"
    except Exception as exc:
        return name, f"error: {exc}"


@router.get("/healthz", tags=["health"])
def healthz(ctx: CtxDep) -> JSONResponse:
    """200 when Redis, the database and the Docker engine answer; 503 with details otherwise."""

    def database() -> None:
        with ctx.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    checks = dict(
        [
            _check("redis", ctx.redis.ping),
            _check("database", database),
            _check("docker", lambda: ctx.docker.ping()),
        ]
    )
    healthy = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unhealthy", "checks": checks}
    if not healthy:
        failed = ", ".join(k for k, v in checks.items() if v != "ok")
        body["error"] = {"code": "unhealthy", "message": f"not answering: {failed}"}
    return JSONResponse(body, status_code=200 if healthy else 503)
