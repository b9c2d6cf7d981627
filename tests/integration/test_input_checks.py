"""Bad input is refused with the contract's error body, before anything is enqueued."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.integration.conftest import WRITE_DIST, Stack, node_project

pytestmark = pytest.mark.integration


def _symlink_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps({"scripts": {"build": "x"}}).encode()
        info = tarfile.TarInfo("package.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("secret")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        archive.addfile(link)
    return buffer.getvalue()


CASES = [
    ("json", {"files": {"../escape.js": "x", **node_project(WRITE_DIST)}}, 400, "invalid_input"),
    ("json", {"files": {"/abs.js": "x", **node_project(WRITE_DIST)}}, 400, "invalid_input"),
    ("json", {"files": {"src/a.js": "x"}}, 400, "invalid_input"),  # no package.json
    ("json", {"files": {"package.json": "{broken"}}, 400, "invalid_input"),
    (
        "json",
        {"files": {"package.json": '{"dependencies": {"react": "19"}}'}},
        400,
        "invalid_input",
    ),  # nothing to build with
    ("json", {"files": {"node_modules/x.js": "x"}, "template": "react"}, 400, "invalid_input"),
    ("json", {"template": "../../etc"}, 404, "not_found"),
    ("json", {"template": "react", "project": "Not A Slug!"}, 400, "invalid_project"),
    ("json", {"template": "react", "limits": {"memory_mb": -5}}, 400, "invalid_input"),
    ("json", {"template": "react", "surprise": 1}, 400, "invalid_input"),
    ("tar", _symlink_tar(), 400, "invalid_input"),
    ("tar", b"not a tarball at all", 400, "invalid_input"),
    ("text", b"hello", 415, "unsupported_media_type"),
    ("json-raw", b"[" * 50_000 + b"]" * 50_000, 400, "invalid_input"),
    (
        "json",
        {"files": {"big.txt": "x" * (11 * 1024 * 1024)}, "template": "react"},
        413,
        "payload_too_large",
    ),
]


@pytest.mark.parametrize(("kind", "body", "status", "code"), CASES)
def test_bad_submissions_are_refused_before_enqueue(
    stack: Stack, kind: str, body: object, status: int, code: str
) -> None:
    before = len(stack.client.builds(limit=500))
    with stack.http() as http:
        if kind == "json":
            response = http.post("/api/v1/builds", json=body)
        elif kind == "json-raw":
            response = http.post(
                "/api/v1/builds", content=body, headers={"Content-Type": "application/json"}
            )
        else:
            ctype = "application/gzip" if kind == "tar" else "text/plain"
            response = http.post("/api/v1/builds", content=body, headers={"Content-Type": ctype})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert len(stack.client.builds(limit=500)) == before


def test_unknown_build_is_a_404_with_error_body(stack: Stack) -> None:
    with stack.http() as http:
        for method, path in [
            ("GET", "/api/v1/builds/ffffffffffffffff"),
            ("POST", "/api/v1/builds/ffffffffffffffff/cancel"),
            ("GET", "/api/v1/nope"),
        ]:
            response = http.request(method, path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"
