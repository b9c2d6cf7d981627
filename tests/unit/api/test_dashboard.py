"""Unit tests for api.dashboard: the built dashboard at /, never in the API's place."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.dashboard import install_dashboard


def _client(folder: Path) -> TestClient:
    app = FastAPI()

    @app.get("/api/v1/real")
    def real() -> dict[str, str]:
        return {"ok": "yes"}

    install_dashboard(app, folder)
    return TestClient(app)


def test_the_dashboard_serves_its_files_and_its_own_routes(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<div id=root></div>")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    client = _client(tmp_path)
    assert client.get("/").text == "<div id=root></div>"
    assert client.get("/builds/abc123").text == "<div id=root></div>"  # client-side route
    asset = client.get("/assets/app-1.js")
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/").headers["cache-control"] == "no-cache"
    assert client.get("/assets/missing.js").status_code == 404
    assert client.get("/api/v1/real").json() == {"ok": "yes"}


def test_unknown_api_paths_stay_json_404s(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    response = _client(tmp_path).get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path: Path) -> None:
    client = _client(tmp_path / "missing")
    response = client.get("/")
    assert response.status_code == 503
    assert "./scripts/up" in response.text
    assert client.get("/assets/app-1.js").status_code == 404
