"""Unit tests for the pure parts of orchestrator.codegen.client: settings, waits, retries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import openai
import pytest

from orchestrator.codegen.client import (
    MAX_BACKOFF_S,
    PLACEHOLDER_KEY,
    Deadline,
    backoff_s,
    is_retryable,
    model_config,
    retry_after_s,
)
from orchestrator.settings import Settings


def status_error(status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, request=request, json={"error": {"message": "x"}})
    cls = {429: openai.RateLimitError, 401: openai.AuthenticationError}.get(
        status, openai.InternalServerError if status >= 500 else openai.BadRequestError
    )
    return cls("x", response=response, body=None)


def test_no_key_and_no_base_url_means_no_model() -> None:
    assert model_config(Settings(openai_api_key="", openai_base_url="")) is None


def test_a_key_alone_uses_the_default_endpoint() -> None:
    config = model_config(Settings(openai_api_key="sk-1", openai_base_url="", openai_model="m"))
    assert config is not None
    assert (config.base_url, config.api_key, config.model) == (None, "sk-1", "m")


def test_a_local_endpoint_needs_no_key() -> None:
    config = model_config(Settings(openai_api_key="", openai_base_url="http://localhost:1/v1"))
    assert config is not None
    assert config.api_key == PLACEHOLDER_KEY


def test_standard_openai_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-std")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy/v1")
    settings = Settings()
    assert (settings.openai_api_key, settings.openai_base_url) == ("sk-std", "http://proxy/v1")
    monkeypatch.setenv("KILN_OPENAI_API_KEY", "sk-kiln")
    assert Settings().openai_api_key == "sk-kiln"  # Kiln's own name wins


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-4"}, 0.0),
    ],
)
def test_retry_after_header(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_s(httpx.Headers(headers)) == seconds


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_s(httpx.Headers({"retry-after": later}), now=now.timestamp()) == 7.0


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_s(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(20, 1.0) == MAX_BACKOFF_S


@pytest.mark.parametrize(
    ("status", "retry"), [(429, True), (500, True), (503, True), (400, False), (401, False)]
)
def test_what_is_retried(status: int, retry: bool) -> None:
    assert is_retryable(status_error(status)) is retry


def test_lost_connections_are_retried() -> None:
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    assert is_retryable(openai.APIConnectionError(request=request))
    assert is_retryable(openai.APITimeoutError(request=request))
    assert not is_retryable(ValueError("bug"))


def test_deadline_counts_down_and_stops_at_zero() -> None:
    now = [100.0]
    deadline = Deadline(10, clock=lambda: now[0])
    assert deadline.remaining() == 10
    now[0] = 107.5
    assert deadline.remaining() == 2.5
    now[0] = 200
    assert deadline.remaining() == 0
