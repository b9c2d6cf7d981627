from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from api.preview import PreviewHost, PreviewServer, status_page
from orchestrator.context import Context
from orchestrator.errors import StorageUnavailable
from orchestrator.records.db import get_engine, upgrade
from orchestrator.records.models import Build
from orchestrator.settings import Settings
from orchestrator.storage.artifacts import OutputLimits


def test_a_running_build_shows_a_self_refreshing_progress_page() -> None:
    page = status_page(
        Build(id="0123456789abcdef", project="p", status="running", phase="building")
    )
    assert page.status_code == 503
    assert page.headers["retry-after"] == "2"
    html = page.body.decode()
    assert 'http-equiv="refresh"' in html and "building" in html


def test_a_failed_build_shows_its_error_escaped() -> None:
    build = Build(
        id="0123456789abcdef",
        project="p",
        status="failed",
        phase="done",
        error_code="build_failed",
        error_message="the build failed with exit code 1",
        error_log_tail="<script>alert(1)</script>",
    )
    page = status_page(build)
    html = page.body.decode()
    assert page.status_code == 404
    assert "refresh" not in html
    assert "build_failed" in html and "exit code 1" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ------------------------------------------------------------- the preview server

BUILD = "0123456789abcdef"
INDEX = b"<!doctype html><h1>preview</h1>"
SCRIPT = b"console.log('x');" * 20_000  # 340 KB: above a 64 KB in-memory bound below


def preview_host(tmp_path: Path, **settings: object) -> tuple[PreviewHost, Context]:
    ctx = Context(Settings(var_dir=tmp_path, preview_memory_file_kb=64, **settings))  # type: ignore[arg-type]
    upgrade(get_engine(ctx.settings.db_url))  # the schema, as `kiln db upgrade` makes it
    dist = tmp_path / "dist"
    for name, body in {
        "index.html": INDEX,
        "assets/app-1.js": SCRIPT,
        "logo.svg": b"<svg/>",
    }.items():
        (dist / name).parent.mkdir(parents=True, exist_ok=True)
        (dist / name).write_bytes(body)
    ctx.storage.publish(dist, BUILD, OutputLimits(max_bytes=10**7, max_files=10))
    host = PreviewHost(lambda *_: None, "preview.localhost")
    host._server = PreviewServer(ctx)
    return host, ctx


def get(client: TestClient, path: str, **headers: str) -> Any:
    return client.get(path, headers={"host": f"{BUILD}.preview.localhost:8000", **headers})


def test_files_are_served_with_types_tags_and_cache_headers(tmp_path: Path) -> None:
    host, _ = preview_host(tmp_path)
    client = TestClient(host)  # type: ignore[arg-type]
    index = get(client, "/")
    assert index.status_code == 200 and index.content == INDEX
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["cache-control"] == "no-cache"
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["etag"] == f'"{hashlib.sha256(INDEX).hexdigest()[:32]}"'
    script = get(client, "/assets/app-1.js")
    assert script.content == SCRIPT and script.headers["content-length"] == str(len(SCRIPT))
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "immutable" in script.headers["cache-control"]
    assert get(client, "/logo.svg").headers["content-type"] == "image/svg+xml"
    assert get(client, "/some/route").content == INDEX  # SPA fallback
    assert get(client, "/assets/missing-0.js").status_code == 404
    assert client.post("/", headers={"host": f"{BUILD}.preview.localhost"}).status_code == 405


def test_conditional_range_and_head(tmp_path: Path) -> None:
    host, _ = preview_host(tmp_path)
    client = TestClient(host)  # type: ignore[arg-type]
    tag = get(client, "/").headers["etag"]
    again = get(client, "/", **{"if-none-match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    part = get(client, "/assets/app-1.js", range="bytes=10-19")
    assert part.status_code == 206 and part.content == SCRIPT[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(SCRIPT)}"
    small = get(client, "/", range="bytes=-5")
    assert small.status_code == 206 and small.content == INDEX[-5:]
    assert get(client, "/", range=f"bytes={len(INDEX)}-").status_code == 416
    head = client.head("/assets/app-1.js", headers={"host": f"{BUILD}.preview.localhost"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(SCRIPT))


def test_a_known_build_is_answered_from_memory(tmp_path: Path) -> None:
    host, _ctx = preview_host(tmp_path)
    client = TestClient(host)  # type: ignore[arg-type]
    assert get(client, "/").content == INDEX
    # Remove the whole artifact: the manifest and index.html are held by this process.
    shutil.rmtree(tmp_path / "artifacts")
    assert get(client, "/").content == INDEX
    # A large file was streamed, not held: it is gone now, and the build is forgotten.
    assert get(client, "/assets/app-1.js").status_code == 404


def test_a_collected_build_is_noticed_at_the_recheck(tmp_path: Path) -> None:
    host, ctx = preview_host(tmp_path, preview_recheck_s=0)
    client = TestClient(host)  # type: ignore[arg-type]
    assert get(client, "/").status_code == 200
    ctx.storage.remove_build(BUILD)
    assert get(client, "/").status_code == 404  # no manifest, no build record: "no build"


def test_a_store_that_does_not_answer_is_503_with_retry_after(tmp_path: Path) -> None:
    host, _ctx = preview_host(tmp_path)
    assert host._server is not None

    def down(build_id: str) -> None:
        raise StorageUnavailable("the store is down")

    host._server.storage.manifest = down  # type: ignore[method-assign]
    client = TestClient(host)  # type: ignore[arg-type]
    page = get(client, "/")
    assert page.status_code == 503 and page.headers["retry-after"] == "5"
    assert page.headers["cache-control"] == "no-store"


def test_other_hosts_go_to_the_api(tmp_path: Path) -> None:
    reached = []

    async def api(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    host = PreviewHost(api, "preview.localhost")
    client = TestClient(host)  # type: ignore[arg-type]
    assert client.get("/x", headers={"host": "127.0.0.1:8000"}).status_code == 204
    assert client.get("/y", headers={"host": "preview.localhost"}).status_code == 204
    assert client.get("/z", headers={"host": "[::1]:8000"}).status_code == 204
    assert reached == ["/x", "/y", "/z"]
    assert host.build_id({"headers": [(b"host", b"NOT-AN-ID.Preview.Localhost")]}) == "not-an-id"
