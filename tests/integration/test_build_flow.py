"""Submit → sandbox build → SSE → preview, through the real API, worker, Docker and Redis."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from orchestrator.settings import REPO_ROOT
from tests.integration.conftest import BOTH_BACKENDS, WRITE_DIST, Stack, node_project

pytestmark = [pytest.mark.integration, BOTH_BACKENDS]


def tarball(files: dict[str, bytes], gz: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def template_files(name: str) -> dict[str, bytes]:
    root = REPO_ROOT / "templates" / name
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "node_modules" not in p.parts and "dist" not in p.parts
    }


def test_template_with_overlay_builds_streams_and_serves_preview(stack: Stack) -> None:
    overlay = {"public/kiln-overlay.txt": "overlay works\n"}
    reply = stack.client.submit_files(overlay, template="react-ts", project="flow-test")
    assert reply["status"] == "queued" and reply["project"] == "flow-test"
    assert reply["links"]["preview"] == stack.preview_url(reply["id"])

    events = stack.events(reply["id"])
    kinds = [e.event for e in events]
    assert kinds[0] == "status" and kinds[-1] == "end"
    assert "log" in kinds
    ids = [e.id for e in events]
    assert all(ids) and len(set(ids)) == len(ids)
    phases = [e.data["phase"] for e in events if e.event == "status"]
    assert phases[:2] == ["queued", "preparing"]
    assert {"installing", "building", "publishing", "done"} <= set(phases)
    logs = "\n".join(e.data["text"] for e in events if e.event == "log")
    assert "npm ci" in logs  # the template's lockfile is in sync
    assert "vite" in logs and "built in" in logs
    end = events[-1].data
    assert end["status"] == "succeeded", end
    assert end["error"] is None and end["duration_ms"] > 0

    build = stack.client.build(reply["id"])
    assert build["status"] == "succeeded" and build["phase"] == "done"
    assert build["preview_url"] == stack.preview_url(reply["id"])

    index = stack.preview(reply["id"], "/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assets = [a for a in _asset_paths(index.text) if a.endswith(".js")]
    assert assets
    script = stack.preview(reply["id"], assets[0])
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "immutable" in script.headers["cache-control"]
    assert stack.preview(reply["id"], "/kiln-overlay.txt").text == "overlay works\n"
    # Client-side routes fall back to index.html; missing assets do not.
    assert stack.preview(reply["id"], "/about").text == index.text
    assert stack.preview(reply["id"], "/assets/missing-0000.js").status_code == 404
    # The preview host never serves the API; the API host never serves previews.
    assert not stack.preview(reply["id"], "/api/v1/templates").text.lstrip().startswith("{")
    with stack.http() as http:
        assert http.get("/").text != index.text  # the API host's / is the dashboard
        assert http.get("/assets/" + assets[0].rsplit("/", 1)[-1]).status_code == 404


def _asset_paths(html: str) -> list[str]:
    import re

    return ["/" + p.lstrip("/") for p in re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_preview_renders_in_a_real_browser_including_client_routes(stack: Stack) -> None:
    reply = stack.client.submit_files({}, template="react-ts", project="browser-test")
    assert stack.wait(reply["id"])["status"] == "succeeded"
    url = stack.preview_url(reply["id"])
    home = _render(url)
    assert "Kiln react-ts template" in home
    about = _render(url + "about")
    assert 'href="/"' in about and about != home


def _render(url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    return result.stdout


@pytest.mark.parametrize("gz", [True, False], ids=["tar.gz", "tar"])
def test_tarball_build(stack: Stack, gz: bool) -> None:
    files = template_files("vanilla")
    files["src/extra.txt"] = b"from a tarball"
    with stack.http() as http:
        response = http.post(
            "/api/v1/builds",
            params={"project": "tar-test"},
            content=tarball({f"app/{k}": v for k, v in files.items()}, gz=gz),
            headers={"Content-Type": "application/gzip" if gz else "application/x-tar"},
        )
    assert response.status_code == 202, response.text
    build_id = response.json()["id"]
    end = stack.wait(build_id)
    assert end["status"] == "succeeded", end
    assert end["project"] == "tar-test"
    assert "Kiln vanilla template" in stack.preview(build_id, "/").text


def test_cli_submit_follows_logs_and_prints_preview_url(stack: Stack, tmp_path: Path) -> None:
    for path, data in template_files("react").items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (tmp_path / "node_modules").mkdir()  # must not be uploaded
    (tmp_path / "node_modules" / "junk.js").write_text("x")
    result = _kiln(stack, "submit", str(tmp_path), "--project", "cli-test")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("http://") and ".preview.localhost:" in url
    assert result.stdout.strip() == url  # stdout carries the result alone
    assert "built in" in result.stderr  # vite's own output, streamed
    build_id = url.split("//")[1].split(".")[0]
    assert stack.preview(build_id, "/").status_code == 200


def test_cli_reports_a_failed_build_with_non_zero_exit(stack: Stack, tmp_path: Path) -> None:
    for path, data in node_project("process.exit(3)").items():
        (tmp_path / path).write_text(data)
    result = _kiln(stack, "submit", str(tmp_path))
    assert result.returncode != 0
    assert "build_failed" in result.stderr


def _kiln(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    kiln = Path(__import__("sys").executable).with_name("kiln")
    return subprocess.run(
        [str(kiln), *args],
        env={**stack.env, "KILN_URL": stack.url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_list_builds_newest_first_and_filtered(stack: Stack) -> None:
    first = stack.client.submit_files(node_project(WRITE_DIST), project="ls-a")
    second = stack.client.submit_files(node_project("process.exit(1)"), project="ls-a")
    stack.wait(first["id"])
    stack.wait(second["id"])
    items = stack.client.builds(project="ls-a")
    assert [b["id"] for b in items] == [second["id"], first["id"]]
    assert [b["id"] for b in stack.client.builds(project="ls-a", status="failed")] == [second["id"]]


def test_templates_are_listed(stack: Stack) -> None:
    with stack.http() as http:
        items = http.get("/api/v1/templates").json()["items"]
    names = {t["name"] for t in items}
    assert {"react", "react-ts", "vanilla"} <= names
    assert all(t["description"] for t in items)


def test_healthz_and_generate_without_model(stack: Stack) -> None:
    with stack.http() as http:
        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.json()["checks"] == {"redis": "ok", "database": "ok", "docker": "ok"}
        generate = http.post("/api/v1/generate", json={"prompt": "a todo app"})
    assert generate.status_code == 503
    assert generate.json()["error"]["code"] == "generation_unavailable"


def test_json_submit_accepts_base64_files(stack: Stack) -> None:
    import base64

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()
    reply = stack.client.submit_files(
        {"public/logo.png": {"base64": png}},
        template="vanilla",  # type: ignore[dict-item]
    )
    assert stack.wait(reply["id"])["status"] == "succeeded"
    logo = stack.preview(reply["id"], "/logo.png")
    assert logo.content == b"\x89PNG\r\n\x1a\n fake"
    assert logo.headers["content-type"] == "image/png"
    assert json.loads(json.dumps(reply))["links"]["events"].endswith("/events")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_lovable_style_project_with_60_dependencies_builds_and_renders(stack: Stack) -> None:
    # React + TS + Tailwind + shadcn/ui (27 Radix packages), @swc/core's install script, ...
    root = REPO_ROOT / "benchmarks" / "projects" / "lovable-style"
    with stack.http() as http:
        from orchestrator.client import tar_project

        response = http.post(
            "/api/v1/builds",
            params={"project": "lovable-style"},
            content=tar_project(root),
            headers={"Content-Type": "application/gzip"},
        )
    assert response.status_code == 202, response.text
    build_id = response.json()["id"]
    end = stack.wait(build_id)
    assert end["status"] == "succeeded", end["error"]
    assert "Lovable-style dashboard" in _render(stack.preview_url(build_id))
    assert "Settings" in _render(stack.preview_url(build_id) + "settings")


def test_peer_dependency_conflict_is_retried_with_legacy_peer_deps(stack: Stack) -> None:
    # react-day-picker 8 declares react <= 18 as a peer: npm 7+ refuses this tree (ERESOLVE),
    # which yarn, pnpm and bun (where exported projects come from) accepted.
    files = node_project(WRITE_DIST)
    manifest = json.loads(files["package.json"])
    manifest["dependencies"] = {"react": "^19.0.0", "react-day-picker": "8.10.1"}
    files["package.json"] = json.dumps(manifest)
    build_id = stack.client.submit_files(files)["id"]
    events = stack.events(build_id)
    assert events[-1].data["status"] == "succeeded", events[-1].data["error"]
    notes = [e.data["text"] for e in events if e.event == "log" and e.data.get("source")]
    assert any("--legacy-peer-deps" in n and "ERESOLVE" in n for n in notes), notes
