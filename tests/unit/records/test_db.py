"""Unit tests for orchestrator.records.db.add_missing_columns on a throwaway SQLite file."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from orchestrator.records.db import add_missing_columns
from orchestrator.records.models import Build  # noqa: F401  (registers the table)


def test_an_older_database_gets_the_new_nullable_columns(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        # The build table as the walking skeleton made it: no error_diagnostics column.
        connection.execute(
            text(
                "CREATE TABLE build (id VARCHAR PRIMARY KEY, project VARCHAR NOT NULL, "
                "template VARCHAR, status VARCHAR NOT NULL, phase VARCHAR NOT NULL, "
                "created_at DATETIME NOT NULL, started_at DATETIME, finished_at DATETIME, "
                "limits JSON, error_code VARCHAR, error_message VARCHAR, "
                "error_log_tail VARCHAR, cancel_requested BOOLEAN NOT NULL)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO build VALUES ('b1', 'p', NULL, 'failed', 'done', "
                "'2026-01-01 00:00:00', NULL, NULL, '{}', 'build_failed', 'm', 't', 0)"
            )
        )
    added = add_missing_columns(engine)
    assert {"build.error_diagnostics", "build.attempts", "build.heartbeat_at"} <= set(added)
    columns = {c["name"] for c in inspect(engine).get_columns("build")}
    assert "error_diagnostics" in columns
    with engine.connect() as connection:
        row = connection.execute(text("SELECT id, error_diagnostics FROM build")).one()
    assert tuple(row) == ("b1", None)
    assert add_missing_columns(engine) == []  # idempotent
