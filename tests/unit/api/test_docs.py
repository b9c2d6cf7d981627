"""/docs and /redoc work with no internet: every asset they load is served by Kiln."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.main import create_app

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets_that_answer(page: str) -> None:
    client = TestClient(create_app())
    html = client.get(page)
    assert html.status_code == 200
    urls = [a or b for a, b in ASSET.findall(html.text)]
    assert urls, html.text
    assert not [u for u in urls if "://" in u or u.startswith("//")], urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 0
    assert "validator.swagger.io" not in html.text
    assert client.get("/openapi.json").status_code == 200
