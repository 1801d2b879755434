"""Absolute session lifetime, a session write version, and server-wide counters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("max_expires_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("version", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_table("counters")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("version")
        batch.drop_column("max_expires_at")
