"""Make up for what ``add_missing_columns`` left out of databases it upgraded.

The unique ``idempotency_key`` (two submits with one key could both insert),
``ix_build_input_digest``, and NOT NULL on ``attempts``. A database that revision 0001
made has all of them, and this revision changes nothing there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op
from alembic.operations import Operations

from orchestrator.records.migrations import repair, schema_0001

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
log = logging.getLogger("kiln.migrations")


def upgrade() -> None:
    operations = Operations(op.get_context())
    for frozen in schema_0001.tables():
        inspector = sa.inspect(op.get_bind())
        if not inspector.has_table(frozen.name):  # made by a Kiln older than that table
            repair.create_table(operations, frozen, schema_0001.INDEXES)
            continue
        facts = repair.read_facts(inspector, frozen.name)
        needed = repair.plan_repair(frozen, schema_0001.INDEXES, facts)
        if needed.alters_table or needed.add_indexes:
            log.info("repairing table %s: %s", frozen.name, needed)
        fill = schema_0001.FILL.get(frozen.name, {})
        repair.apply_repair(operations, frozen, needed, schema_0001.INDEXES, fill)


def downgrade() -> None:
    pass  # nothing to undo: the repaired table is the one revision 0001 makes
