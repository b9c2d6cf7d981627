"""The tables as revision 0001 makes them: Kiln's schema before Alembic (git 6c861c6).

Frozen here, not read from ``records.models``, so this revision keeps meaning what it
meant when later revisions change the models. ``SQLModel.metadata.create_all`` of that
Kiln made exactly these tables, indexes and the unique ``idempotency_key``.
"""

from __future__ import annotations

import sqlalchemy as sa

# Index name -> (table, columns), as SQLModel names them (``ix_<table>_<column>``).
INDEXES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ix_build_project": ("build", ("project",)),
    "ix_build_status": ("build", ("status",)),
    "ix_build_created_at": ("build", ("created_at",)),
    "ix_build_input_digest": ("build", ("input_digest",)),
}
# What a row gets in a NOT NULL column that an older Kiln added as nullable (or not at all).
FILL: dict[str, dict[str, object]] = {
    "build": {"attempts": 0, "cancel_requested": False},
    "generation": {"prompt_tokens": 0, "completion_tokens": 0},
}


def build_table(metadata: sa.MetaData) -> sa.Table:
    """The ``build`` table of revision 0001."""
    return sa.Table(
        "build",
        metadata,
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("project", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("phase", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("limits", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(), nullable=True),
        sa.Column("error_message", sa.String(), nullable=True),
        sa.Column("error_log_tail", sa.String(), nullable=True),
        sa.Column("error_diagnostics", sa.JSON(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("input_digest", sa.String(), nullable=True),
        sa.Column("reused_from", sa.String(), nullable=True),
        sa.Column("cache", sa.JSON(), nullable=True),
        sa.UniqueConstraint("idempotency_key"),
    )


def generation_table(metadata: sa.MetaData) -> sa.Table:
    """The ``generation`` table of revision 0001."""
    return sa.Table(
        "generation",
        metadata,
        sa.Column("build_id", sa.String(), primary_key=True),
        sa.Column("prompt", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("template", sa.String(), nullable=True),
        sa.Column("base_build", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rounds", sa.JSON(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("deleted", sa.JSON(), nullable=True),
    )


def tables() -> list[sa.Table]:
    """Both tables of revision 0001, on a metadata of their own."""
    metadata = sa.MetaData()
    return [build_table(metadata), generation_table(metadata)]
