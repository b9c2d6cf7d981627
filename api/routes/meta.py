"""Templates and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from api.deps import CtxDep
from api.errors import error_responses
from api.schemas import EnvironmentsPublic, ErrorDetail, Health, TemplatesPublic
from orchestrator import service
from orchestrator.context import Context
from orchestrator.errors import ErrorCode
from orchestrator.ops.metrics import KilnCollector

router = APIRouter()


@router.get("/api/v1/templates", tags=["templates"], response_model=TemplatesPublic)
def list_templates(ctx: CtxDep) -> Any:
    """The bundled templates a submit can start from."""
    return {"items": service.list_templates(ctx)}


@router.get(
    "/api/v1/environments",
    tags=["environments"],
    response_model=EnvironmentsPublic,
    responses=error_responses(503),
)
def list_environments(ctx: CtxDep) -> Any:
    """The Node majors builds can run with (full versions) and the package managers' versions.

    503 when the sandbox image is missing or the Docker engine does not answer."""
    return {"items": service.list_environments(ctx)}


def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        probe()
        return name, "ok"
    except Exception as exc:
        return name, f"error: {exc}"


PROMETHEUS_TEXT = {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    responses=error_responses(ok=PROMETHEUS_TEXT),
)
def metrics(ctx: CtxDep) -> Response:
    """Prometheus metrics, read from the database and Redis at scrape time."""
    return Response(generate_latest(metrics_registry(ctx)), media_type=CONTENT_TYPE_LATEST)


_registries: dict[int, CollectorRegistry] = {}


def metrics_registry(ctx: Context) -> CollectorRegistry:
    """A registry holding Kiln's one collector (made once per API context)."""
    if id(ctx) not in _registries:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(KilnCollector(ctx))
        _registries[id(ctx)] = registry
    return _registries[id(ctx)]


@router.get(
    "/healthz",
    tags=["health"],
    response_model=Health,
    responses={503: {"model": Health, "description": "`unhealthy`: a dependency is down."}},
)
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
    failed = ", ".join(k for k, v in checks.items() if v != "ok")
    body = Health(
        status="unhealthy" if failed else "ok",
        checks=checks,
        error=ErrorDetail(code=ErrorCode.UNHEALTHY, message=f"not answering: {failed}")
        if failed
        else None,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503 if failed else 200)
