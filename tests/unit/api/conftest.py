"""The real API app on a SQLite file, with no Redis, Docker or worker behind it.

Redis points at a closed port, so whatever needs it fails as it does when Redis is down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from orchestrator.context import Context, api_context
from orchestrator.records.db import get_engine, upgrade
from orchestrator.settings import Settings

OfflineAPI = Callable[..., tuple[TestClient, Context]]
CLOSED_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def offline_api(tmp_path: Path) -> Iterator[OfflineAPI]:
    """Make (client, context) for settings ``overrides``; each call gets its own var/."""
    app = create_app()
    made: list[TestClient] = []

    def make(**overrides: Any) -> tuple[TestClient, Context]:
        var_dir = tmp_path / f"var{len(made)}"
        var_dir.mkdir()
        values: dict[str, Any] = {
            "var_dir": var_dir,
            "redis_url": CLOSED_REDIS,
            "cache_reuse": False,  # would ask Docker for the sandbox image
            "min_free_disk_mb": 0,
            "openai_api_key": "",
            **overrides,
        }
        ctx = Context(Settings(_env_file=None, **values))  # type: ignore[call-arg]
        upgrade(get_engine(ctx.settings.db_url))  # the schema, as `kiln db upgrade` makes it
        app.dependency_overrides[api_context] = lambda: ctx
        client = TestClient(app, raise_server_exceptions=False)
        made.append(client)
        return client, ctx

    yield make
    app.dependency_overrides.clear()
    for client in made:
        client.close()
