"""The transition guide's schema: users, products, sessions, shopping_carts.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
EMPTY = sa.text("'{}'")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("preferences", Json, server_default=EMPTY),
        sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("category", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("user_id", sa.String(50), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("data", Json, server_default=EMPTY),
        sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
        sa.Column("last_accessed", sa.DateTime(), server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "shopping_carts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(255), sa.ForeignKey("sessions.id", ondelete="CASCADE")),
        sa.Column("product_id", sa.String(50), sa.ForeignKey("products.id", ondelete="CASCADE")),
        sa.Column("quantity", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
        sa.UniqueConstraint("session_id", "product_id"),
    )
    op.create_index("idx_sessions_user_id", "sessions", ["user_id"])
    op.create_index("idx_sessions_expires_at", "sessions", ["expires_at"])
    op.create_index("idx_carts_session_id", "shopping_carts", ["session_id"])
    op.create_index("idx_products_category", "products", ["category"])


def downgrade() -> None:
    op.drop_index("idx_products_category", "products")
    op.drop_index("idx_carts_session_id", "shopping_carts")
    op.drop_index("idx_sessions_expires_at", "sessions")
    op.drop_index("idx_sessions_user_id", "sessions")
    op.drop_table("shopping_carts")
    op.drop_table("sessions")
    op.drop_table("products")
    op.drop_table("users")
