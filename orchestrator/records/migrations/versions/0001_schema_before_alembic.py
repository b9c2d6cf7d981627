"""The schema before Alembic: the build and generation tables as Kiln made them.

A database that Kiln made before Alembic has these tables and no ``alembic_version``;
``records.db.upgrade`` stamps it with this revision instead of running it.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from alembic.operations import Operations

from orchestrator.records.migrations import repair, schema_0001

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    operations = Operations(op.get_context())
    for table in schema_0001.tables():
        repair.create_table(operations, table, schema_0001.INDEXES)


def downgrade() -> None:
    op.drop_table("generation")
    op.drop_table("build")  # its indexes go with it
