"""The WebSocket's client messages and frames, from a table."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import InputError
from orchestrator.live.events import Event
from orchestrator.live.protocol import (
    Request,
    error_frame,
    event_frame,
    origin_allowed,
    parse_request,
)

GOOD = [
    ('{"subscribe": {"build": "0a1b"}}', Request("subscribe", "build", "0a1b")),
    (
        '{"subscribe": {"project": "shop", "after": "17-3"}}',
        Request("subscribe", "project", "shop", "17-3"),
    ),
    ('{"unsubscribe": {"build": "ff"}}', Request("unsubscribe", "build", "ff")),
    ('{"ping": 42}', Request("ping", ping=42)),
]

BAD = [
    "not json",
    "[]",
    '{"subscribe": {"build": "ab"}, "ping": 1}',
    '{"shout": {}}',
    '{"subscribe": "ab"}',
    '{"subscribe": {}}',
    '{"subscribe": {"build": "ab", "project": "p"}}',
    '{"subscribe": {"build": "AB/../x"}}',
    '{"subscribe": {"build": 12}}',
    '{"subscribe": {"project": "Not A Slug"}}',
    '{"subscribe": {"build": "ab", "after": "yesterday"}}',
    '{"subscribe": {"build": "ab", "after": 5}}',
    '{"subscribe": {"build": "ab", "since": "1-0"}}',
    '{"ping": "' + "x" * 5000 + '"}',
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_parse_good_messages(text: str, expected: Request) -> None:
    assert parse_request(text) == expected


@pytest.mark.parametrize("text", BAD)
def test_parse_refuses_bad_messages(text: str) -> None:
    with pytest.raises(InputError):
        parse_request(text)


def test_channel_names() -> None:
    assert Request("subscribe", "build", "ab").channel == "build:ab"
    assert Request("subscribe", "project", "shop").channel == "project:shop"


def test_frames() -> None:
    frame = json.loads(event_frame("build:ab", Event("1-0", "log", {"text": 'hi\n"x"'})))
    assert frame == {
        "channel": "build:ab",
        "id": "1-0",
        "event": "log",
        "data": {"text": 'hi\n"x"'},
    }
    assert json.loads(event_frame("build:ab", Event("", "error", {})))["id"] is None
    assert error_frame("not_found", "no build", "build:ab") == {
        "error": {"code": "not_found", "message": "no build"},
        "channel": "build:ab",
    }
    assert "channel" not in error_frame("invalid_input", "bad")


ORIGINS = [
    (None, "kiln:8000", [], True),  # not a browser
    ("https://app.example.com", "kiln:8000", ["https://app.example.com"], True),
    ("https://app.example.com/", "kiln:8000", ["https://app.example.com"], True),
    ("https://evil.example.com", "kiln:8000", ["https://app.example.com"], False),
    ("http://app.example.com", "kiln:8000", ["https://app.example.com"], False),  # scheme
    ("https://app.example.com:444", "kiln:8000", ["https://app.example.com"], False),
    ("http://kiln:8000", "kiln:8000", [], True),  # the API's own pages
    ("http://kiln:8001", "kiln:8000", [], False),
    ("null", "kiln:8000", [], False),
]


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), ORIGINS)
def test_origin_allowed(origin: str | None, host: str, allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok
