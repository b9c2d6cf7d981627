"""The one place where errors become HTTP responses: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.schemas import ErrorBody, ErrorDetail
from orchestrator.errors import ErrorCode, KilnError

log = logging.getLogger("kiln.api")
HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}
# What each error status means, with the codes it carries (orchestrator/errors.py).
ERROR_STATUSES: dict[int, str] = {
    400: "Refused before anything was enqueued: `invalid_input` (a bad body, parameter or "
    "header), `unsupported_dependency`, `unsupported_environment` (a Node major the image "
    "does not offer).",
    404: "`not_found`: no such build, template or generation.",
    409: "`conflict`: the request does not fit the build's state.",
    413: "`payload_too_large`: the upload, a file or the file count exceeds its bound.",
    415: "`unsupported_media_type`: the body is neither JSON nor a tar or gzip archive.",
    429: "`queue_full`: too many queued builds, overall or for the project; see Retry-After.",
    503: "`unavailable` (the queue's Redis) or `generation_unavailable` (no model configured).",
    507: "`disk_full`: the disk under var/ is nearly full; no new builds.",
}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}


def error_response(status: int, code: ErrorCode, message: str) -> JSONResponse:
    """The contract's error body."""
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status)


def error_responses(
    *statuses: int, ok: dict[str, Any] | None = None
) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: the error body under each status the route answers (and
    ``ok``, the 200 response of a route whose body is not JSON)."""
    declared: dict[int | str, dict[str, Any]] = {} if ok is None else {200: ok}
    for status in statuses:
        declared[status] = {"model": ErrorBody, "description": ERROR_STATUSES[status]}
        if status == 429:
            declared[status]["headers"] = {"Retry-After": RETRY_AFTER}
    return declared


def as_answered(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) as Kiln really answers: without FastAPI's automatic
    422 responses (validation errors are answered 400), and every error as JSON, also on
    routes whose success is plain text."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            for status, response in responses.items():
                content = response.get("content", {})
                if int(status) >= 400 and content and "application/json" not in content:
                    response["content"] = {"application/json": next(iter(content.values()))}
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def install_error_handlers(app: FastAPI) -> None:
    """Map Kiln's error tree, validation errors and HTTP errors to the contract's body."""

    @app.exception_handler(KilnError)
    async def kiln_error(_request: Request, exc: KilnError) -> JSONResponse:
        response = error_response(exc.http_status, exc.code, exc.message)
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return error_response(400, ErrorCode.INVALID_INPUT, problems or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, ErrorCode.INTERNAL_ERROR, "internal error; see the server log")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, ErrorCode.HTTP_ERROR)
        return error_response(exc.status_code, code, str(exc.detail))
