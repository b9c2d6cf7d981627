"""A submit's build settings (``env``), read by the worker for the build step only.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("build") as batch:
        batch.add_column(sa.Column("env", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("build") as batch:
        batch.drop_column("env")
