"""No usable session ids at rest: `sessions.id` (and `shopping_carts.session_id`) become the
keyed hash of the session id, and `sessions.sealed_id` keeps the id sealed for the export
(statebridge/db/sessionkeys.py).

The keys come from the same settings the servers read: STATEBRIDGE_SESSION_SECRET from the
environment (or `.env`); without it, the `session-secret` file beside the SQLite database
being upgraded (made if missing), or, on PostgreSQL outside production, the development
secret. Upgrade with the secret the servers will run with, or the upgraded sessions are not
found. Every existing session keeps working, its cart with it. The database gets a new id,
so that servers drop what Redis cached under the old ids at start (they find it again in the
database). On SQLite the old rows are overwritten as they are deleted (secure_delete); on
PostgreSQL they stay in the table's dead tuples until `VACUUM FULL sessions, shopping_carts`
(docs/operations.md).

Downgrade cannot give the rows their ids back without the secret, and a session under a hash
is useless to an older statebridge: it ends every session (their carts go with them).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from statebridge.config import Settings
    from statebridge.db.sessionkeys import rekey_rows, session_keys

    bind = op.get_bind()
    keys = session_keys(Settings(), bind.engine.url.render_as_string(hide_password=False))
    if bind.dialect.name == "sqlite":
        # the rows this deletes are overwritten with zeros, not left in the file's free pages
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("sealed_id", sa.String(255), nullable=True))
    rekey_rows(bind, keys)
    renew_database_id()


def renew_database_id() -> None:
    """Servers drop what Redis holds of another database id at start."""
    meta = sa.table("statebridge_meta", sa.column("key", sa.String), sa.column("value", sa.String))
    op.get_bind().execute(
        sa.update(meta).where(meta.c.key == "database_id").values(value=uuid.uuid4().hex)
    )


def downgrade() -> None:
    op.execute("DELETE FROM shopping_carts")
    op.execute("DELETE FROM sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("sealed_id")
    renew_database_id()
