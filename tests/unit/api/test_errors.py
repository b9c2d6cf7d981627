"""Unit tests for api.errors on a tiny in-process FastAPI app (no Kiln services)."""

from __future__ import annotations

from typing import Any, Protocol

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api.errors import error_response, install_error_handlers
from orchestrator.errors import (
    BuildError,
    Conflict,
    ErrorCode,
    InputError,
    KilnError,
    NotFound,
    PayloadTooLarge,
    SandboxError,
    Unavailable,
    UnsupportedMediaType,
)

RAISED: dict[str, KilnError] = {
    "input": InputError("package.json is missing"),
    "media": UnsupportedMediaType("send application/json"),
    "missing": NotFound("no build deadbeefdeadbeef"),
    "large": PayloadTooLarge("request body is larger than 10 bytes"),
    "conflict": Conflict("build already ended"),
    "unavailable": Unavailable("Redis is not reachable"),
    "build": BuildError("it broke", code="timeout"),
    "sandbox": SandboxError("image missing"),
}


class Item(BaseModel):
    name: str
    size: int


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/raise/{kind}")
    def raise_kind(kind: str) -> None:
        raise RAISED[kind]

    @app.get("/typed")
    def typed(n: int) -> dict[str, int]:
        return {"n": n}

    @app.post("/items")
    def items(item: Item) -> Item:
        return item

    @app.get("/teapot")
    def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    install_error_handlers(app)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


class HasJSON(Protocol):
    def json(self) -> Any: ...


def error_of(response: HasJSON) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("input", 400, "invalid_input"),
        ("media", 415, "unsupported_media_type"),
        ("missing", 404, "not_found"),
        ("large", 413, "payload_too_large"),
        ("conflict", 409, "conflict"),
        ("unavailable", 503, "unavailable"),
        ("build", 500, "timeout"),
        ("sandbox", 500, "sandbox_error"),
    ],
)
def test_kiln_errors_become_the_contract_body(
    client: TestClient, kind: str, status: int, code: str
) -> None:
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert error_of(response) == {"code": code, "message": RAISED[kind].message}


def test_query_validation_error_is_invalid_input(client: TestClient) -> None:
    response = client.get("/typed", params={"n": "abc"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("query.n: ")
    assert client.get("/typed", params={"n": "7"}).json() == {"n": 7}


def test_missing_parameter_is_invalid_input(client: TestClient) -> None:
    response = client.get("/typed")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("query.n: Field required")


def test_body_validation_errors_are_joined(client: TestClient) -> None:
    response = client.post("/items", json={"size": "big"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert "body.name: Field required" in error["message"]
    assert "body.size: " in error["message"]
    assert "; " in error["message"]


def test_unknown_route_is_not_found(client: TestClient) -> None:
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "Not Found"}


def test_wrong_method_is_method_not_allowed(client: TestClient) -> None:
    response = client.delete("/typed")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_other_http_errors_keep_status_and_detail(client: TestClient) -> None:
    response = client.get("/teapot")
    assert response.status_code == 418
    assert error_of(response) == {"code": "http_error", "message": "short and stout"}


def test_unexpected_errors_are_a_contract_body_without_internals(client: TestClient) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert error_of(response)["code"] == "internal_error"
    assert "secret internals" not in response.text


def test_error_response() -> None:
    response = error_response(429, ErrorCode.QUEUE_FULL, "too many")
    assert response.status_code == 429
    assert response.body == b'{"error":{"code":"queue_full","message":"too many"}}'
