"""Escapes by path: archives and file maps that point outside, and links in the output."""

from __future__ import annotations

import io
import socket
import tarfile

import pytest

from tests.integration.conftest import WRITE_DIST, Stack, node_project
from tests.security.conftest import Beside

pytestmark = pytest.mark.security


def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        manifest = b'{"name":"x","scripts":{"build":"node build.js"}}'
        info = tarfile.TarInfo("package.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "bad",
    [
        member("../escape.js"),
        member("/etc/cron.d/evil"),
        member("src/../../escape.js"),
        member("link", tarfile.SYMTYPE, "/etc/passwd"),
        member("hard", tarfile.LNKTYPE, "package.json"),
        member("dev", tarfile.CHRTYPE),
        member("fifo", tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink", "hardlink", "device", "fifo"],
)
def test_archives_that_point_outside_are_refused_before_enqueue(
    hostile_stack: Stack, bad: tarfile.TarInfo
) -> None:
    with hostile_stack.http() as http:
        before = len(http.get("/api/v1/builds", params={"limit": 100}).json()["items"])
        reply = http.post(
            "/api/v1/builds",
            content=tar_with(bad, b"x"),
            headers={"Content-Type": "application/x-tar"},
        )
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "invalid_input"
        after = len(http.get("/api/v1/builds", params={"limit": 100}).json()["items"])
    assert after == before  # nothing was recorded or enqueued


@pytest.mark.parametrize(
    "path", ["../x.js", "/abs.js", "a/../../x.js", "a\\..\\x.js", "nul\x00.js", ""]
)
def test_file_maps_that_point_outside_are_refused(hostile_stack: Stack, path: str) -> None:
    files = {**node_project(WRITE_DIST), path: "x"}
    with hostile_stack.http() as http:
        reply = http.post("/api/v1/builds", json={"files": files})
    assert reply.status_code == 400, reply.text


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ('fs.symlinkSync("/etc/passwd", "dist/passwd");', "unsafe_output"),
        ('fs.symlinkSync("/", "dist/root");', "unsafe_output"),
        ('fs.writeFileSync("secret", "s"); fs.linkSync("secret", "dist/hard");', "unsafe_output"),
        (
            'fs.renameSync("dist", "real"); fs.symlinkSync("real", "dist");',
            "unsafe_output",
        ),
        (
            'let d = "dist"; for (let i = 0; i < 40; i++) { d += "/d"; fs.mkdirSync(d); }',
            "output_too_large",
        ),
    ],
    ids=["symlink-file", "symlink-dir", "hardlink", "dist-is-a-link", "too-deep"],
)
def test_links_and_tricks_in_the_output_are_refused(
    beside: Beside, hostile_stack: Stack, script: str, code: str
) -> None:
    build_id, end = beside.attack(node_project(WRITE_DIST + script))
    assert (end["status"], end["error"]["code"]) == ("failed", code), end["error"]
    for path in ("/passwd", "/root/etc/passwd", "/hard", "/"):
        page = hostile_stack.preview(build_id, path)
        assert "root:" not in page.text
        assert page.status_code == 404


def raw_get(port: int, host: str, path: str) -> str:
    """GET ``path`` byte for byte (httpx would resolve the dot segments before sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def test_preview_paths_cannot_climb_out(hostile_stack: Stack) -> None:
    build_id = hostile_stack.client.submit_files(node_project(WRITE_DIST), fresh=True)["id"]
    assert hostile_stack.wait(build_id)["status"] == "succeeded"
    host = f"{build_id}.preview.localhost:{hostile_stack.port}"
    assert "fixture" in raw_get(hostile_stack.port, host, "/")  # the raw request works
    up = 20  # more levels than the artifact store is deep, so the root is reached
    for path in (
        "/" + "../" * up + "etc/passwd",
        "/assets/" + "../" * up + "etc/passwd",
        "/" + "%2e%2e/" * up + "etc/passwd",
        "/" + "..%2f" * up + "etc%2fpasswd",
    ):
        reply = raw_get(hostile_stack.port, host, path)
        assert "root:" not in reply, path
