"""The ``kiln`` command with a fake API client and fake operator views (no services)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator import cli
from orchestrator.settings import get_settings, installation_root

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli.app, list(args))


def test_operator_commands_say_which_installation_and_leave_the_folder_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.ops import views

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KILN_VAR_DIR", raising=False)
    get_settings.cache_clear()
    summary = {
        "builds": [],
        "running": 1,
        "queued": 0,
        "oldest_wait_s": 0.0,
        "redis_queue_length": 0,
        "redis_started": 1,
        "redis_failed": 0,
        "draining": False,
    }
    monkeypatch.setattr(views, "queue_summary", lambda ctx: summary)
    result = invoke("queue")
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"installation {installation_root()}" in " ".join(result.output.split())
    assert str(tmp_path) not in result.output
    assert list(tmp_path.iterdir()) == []
