"""Unit tests for api.auth: which requests need KILN_API_TOKEN, and how it is checked."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.auth import TokenGate, needs_token, presented_token


def test_only_the_api_host_s_data_routes_need_the_token() -> None:
    domain = "preview.localhost"
    assert needs_token("/api/v1/builds", "127.0.0.1:8000", domain)
    assert needs_token("/metrics", "kiln.example.com", domain)
    assert not needs_token("/healthz", "127.0.0.1:8000", domain)
    assert not needs_token("/", "127.0.0.1:8000", domain)  # the dashboard's files
    assert not needs_token("/assets/index.js", "127.0.0.1:8000", domain)
    assert not needs_token("/api/v1/x", "abc.preview.localhost:8000", domain)  # a preview


def test_the_token_comes_from_the_bearer_header_or_the_query() -> None:
    assert presented_token({"headers": [(b"authorization", b"Bearer abc")]}) == "abc"
    assert presented_token({"headers": [], "query_string": b"access_token=xyz"}) == "xyz"
    assert presented_token({"headers": [(b"authorization", b"Basic abc")]}) is None


def _app(token: str) -> TestClient:
    inner = Starlette(routes=[Route("/api/v1/builds", lambda r: PlainTextResponse("ok"))])
    return TestClient(TokenGate(inner, token=token, preview_domain="preview.localhost"))


def test_a_wrong_or_missing_token_is_401_with_the_error_body() -> None:
    client = _app("s3cret")
    missing = client.get("/api/v1/builds")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/builds", headers={"Authorization": "Bearer nope"}).status_code == 401
    good = client.get("/api/v1/builds", headers={"Authorization": "Bearer s3cret"})
    assert good.status_code == 200
    assert client.get("/api/v1/builds?access_token=s3cret").status_code == 200


def test_no_token_configured_lets_everything_through() -> None:
    assert _app("").get("/api/v1/builds").status_code == 200
