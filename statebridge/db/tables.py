"""The schema: the transition guide's four tables, plus what Phase 2 needs beside them.

Alembic's revisions are the source of truth for the database; these Table objects
describe the same schema for queries.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

Json = sa.JSON().with_variant(JSONB(), "postgresql")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(50), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("preferences", Json, server_default=sa.text("'{}'")),
    sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(50), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("category", sa.String(100), nullable=False, index=False),
    sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("user_id", sa.String(50), sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("data", Json, server_default=sa.text("'{}'")),
    sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
    sa.Column("last_accessed", sa.DateTime(), server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    # revision 0002: the absolute end of the session, whatever its activity
    sa.Column("max_expires_at", sa.DateTime(), nullable=True),
    # revision 0002: bumped by every write, so caches can tell old snapshots from new ones
    sa.Column("version", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    # revision 0004: where the session was made (GET /session/siblings shows them)
    sa.Column("client_address", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(255), nullable=True),
    # revision 0005: `id` is the keyed hash of the session id, and this the id itself,
    # sealed (statebridge/db/sessionkeys.py); read by the export only
    sa.Column("sealed_id", sa.String(255), nullable=True),
)

shopping_carts = sa.Table(
    "shopping_carts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(255), sa.ForeignKey("sessions.id", ondelete="CASCADE")),
    sa.Column("product_id", sa.String(50), sa.ForeignKey("products.id", ondelete="CASCADE")),
    sa.Column("quantity", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("created_at", sa.DateTime(), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(), server_default=sa.func.now()),
    sa.UniqueConstraint("session_id", "product_id"),
)

# revision 0002: server-wide counters (requestCount) for the embedded default
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False, server_default=sa.text("0")),
)

# revision 0003: facts about the database itself; `database_id` is made anew with the schema
meta = sa.Table(
    "statebridge_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)
