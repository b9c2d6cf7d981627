"""Unit tests for orchestrator.client: the API's error bodies become ApiError."""

from __future__ import annotations

import itertools

import httpx
import pytest

from orchestrator.client import ApiError, KilnClient
from orchestrator.errors import ErrorCode


def client_answering(status: int, body: object) -> KilnClient:
    client = KilnClient("http://kiln.test")
    transport = httpx.MockTransport(lambda _request: httpx.Response(status, json=body))
    client.http = httpx.Client(base_url="http://kiln.test", transport=transport)
    return client


def test_a_known_code_becomes_its_error_code() -> None:
    body = {"error": {"code": "queue_full", "message": "try later"}}
    with pytest.raises(ApiError) as caught:
        client_answering(429, body).build("b1")
    assert caught.value.code is ErrorCode.QUEUE_FULL and caught.value.api_code == "queue_full"
    assert (caught.value.http_status, caught.value.message) == (429, "try later")


def test_a_code_this_client_does_not_know_is_kept_as_sent() -> None:
    body = {"error": {"code": "brand_new_code", "message": "from a newer server"}}
    with pytest.raises(ApiError) as caught:
        client_answering(409, body).build("b1")
    assert caught.value.code is ErrorCode.HTTP_ERROR
    assert caught.value.api_code == "brand_new_code"


def test_every_error_class_carries_an_error_code() -> None:
    from orchestrator import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    kiln_errors = [c for c in classes if issubclass(c, errors.KilnError)]
    assert len(kiln_errors) > 10
    assert all(isinstance(c.code, ErrorCode) for c in kiln_errors)


def test_the_project_feed_resumes_from_the_last_id_after_a_cut() -> None:
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        if len(asked) == 1:
            body = (
                'id: 1-0\nevent: build\ndata: {"id": "b1"}\n\n'
                'id: 1-0\nevent: error\ndata: {"code": "slow_consumer", "last_id": "1-0"}\n\n'
            )
        else:
            body = 'id: 2-0\nevent: build_end\ndata: {"id": "b1"}\n\n'
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = KilnClient("http://kiln.test", token="")
    client.http = httpx.Client(base_url="http://kiln.test", transport=httpx.MockTransport(answer))
    got = list(itertools.islice(client.project_events("shop", retry_s=0), 3))
    assert [(i, e) for i, e, _ in got] == [("1-0", "build"), ("1-0", "error"), ("2-0", "build_end")]
    assert asked == [None, "1-0"]
