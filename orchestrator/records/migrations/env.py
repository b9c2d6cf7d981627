"""Alembic's environment: runs migrations on the connection ``records.db`` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import orchestrator.records.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run Kiln's migrations with `kiln db upgrade` (records.db.upgrade)")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    # SQLite alters a table by copying it: batch mode does that where a migration asks.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
