"""Unit tests for the pure helpers of api.routes.builds (no Redis, no database, no server)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import pytest

from api.routes.builds import parse_json_submit, submit_reply
from orchestrator.context import Context
from orchestrator.errors import InputError
from orchestrator.live.events import Event
from orchestrator.records.models import Build
from orchestrator.settings import Settings

# ------------------------------------------------------------- SSE encoding


def test_sse_carries_id_event_and_json_data() -> None:
    data = {"phase": "building", "stream": "stdout", "text": "héllo"}
    wire = Event("1700000000000-3", "log", data).sse.decode()
    lines = wire.split("\r\n")
    assert lines[:2] == ["id: 1700000000000-3", "event: log"]
    assert json.loads(lines[2].removeprefix("data: ")) == data


def test_sse_data_is_one_line_even_with_newlines_in_the_text() -> None:
    wire = Event("1-0", "log", {"text": "a\nb\r\nid: 9-9\n\nevent: end"}).sse.decode()
    assert wire.startswith("id: 1-0\r\nevent: log\r\ndata: ")
    assert wire.count("data: ") == 1 and wire.count("\r\n\r\n") == 1
    assert wire.endswith("\r\n\r\n") and wire.count("\n") == 4


# ------------------------------------------------------------ parse_json_submit


def test_parse_json_submit_valid() -> None:
    body = {
        "files": {"package.json": "{}", "logo.png": {"base64": "iVBORw=="}},
        "template": "react",
        "project": "demo",
        "limits": {"timeout_s": 60, "cpus": 1.5},
    }
    got = parse_json_submit(json.dumps(body).encode())
    assert got.files == body["files"]
    assert (got.template, got.project) == ("react", "demo")
    assert got.limits is not None
    assert got.limits.model_dump() == {"timeout_s": 60.0, "memory_mb": None, "cpus": 1.5}


def test_parse_json_submit_defaults() -> None:
    got = parse_json_submit(b"{}")
    assert (got.files, got.template, got.project, got.limits) == ({}, None, None, None)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"file": {}}, "file: Extra inputs"),
        ({"files": {}, "token": "x"}, "token: Extra inputs"),
        ({"limits": {"gpus": 1}}, "limits.gpus: Extra inputs"),
    ],
)
def test_unknown_fields_are_refused(body: dict[str, Any], where: str) -> None:
    with pytest.raises(InputError, match=where):
        parse_json_submit(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"files": ["package.json"]}, "files"),
        ({"files": {"a.js": 1}}, "files.a.js"),
        ({"files": {"a.bin": {"base64": 1}}}, "files.a.bin"),
        ({"template": 5}, "template"),
        ({"project": ["a"]}, "project"),
        ({"limits": "fast"}, "limits"),
        ({"limits": {"cpus": "many"}}, "limits.cpus"),
        ({"limits": {"memory_mb": 0}}, "limits.memory_mb"),
        ({"limits": {"timeout_s": -1}}, "limits.timeout_s"),
        ([], "body"),
        ("files", "body"),
    ],
)
def test_wrong_types_are_refused(body: object, where: str) -> None:
    with pytest.raises(InputError, match=f"invalid submit body: {where}"):
        parse_json_submit(json.dumps(body).encode())


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b'{"files": {}} x'])
def test_malformed_json_is_refused(body: bytes) -> None:
    with pytest.raises(InputError, match="invalid submit body"):
        parse_json_submit(body)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"files": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        b'{"limits": ' + b'{"x": ' * 50_000 + b"1" + b"}" * 50_001,
    ],
)
def test_deeply_nested_json_is_refused(body: bytes) -> None:
    with pytest.raises(InputError, match="invalid submit body"):
        parse_json_submit(body)


# ----------------------------------------------------------------- submit_reply


@dataclass
class FakeContext:
    settings: Settings


@pytest.fixture()
def ctx(monkeypatch: pytest.MonkeyPatch) -> Context:
    for name in ("HOST", "PUBLIC_URL", "PREVIEW_DOMAIN", "PREVIEW_SCHEME", "PREVIEW_PORT"):
        monkeypatch.delenv(f"KILN_{name}", raising=False)
    return cast(Context, FakeContext(Settings(port=8123, _env_file=None)))  # type: ignore[call-arg]


def test_submit_reply_shape(ctx: Context) -> None:
    build = Build(id="0123456789abcdef", project="demo")
    assert submit_reply(ctx, build).model_dump(mode="json") == {
        "id": "0123456789abcdef",
        "status": "queued",
        "project": "demo",
        "reused_from": None,
        "links": {
            "self": "http://127.0.0.1:8123/api/v1/builds/0123456789abcdef",
            "events": "http://127.0.0.1:8123/api/v1/builds/0123456789abcdef/events",
            "preview": "http://0123456789abcdef.preview.localhost:8123/",
        },
    }


def test_submit_reply_follows_the_build_and_public_url(ctx: Context) -> None:
    ctx.settings.public_url = "https://kiln.example/"
    build = Build(project="other")
    reply = submit_reply(ctx, build).model_dump(mode="json")
    assert reply["id"] == build.id and reply["project"] == "other"
    assert reply["links"]["self"] == f"https://kiln.example/api/v1/builds/{build.id}"
    assert reply["links"]["events"] == reply["links"]["self"] + "/events"
    assert reply["links"]["preview"].startswith(f"http://{build.id}.")
