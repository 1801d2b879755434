"""When the last successful backup was made: `statebridge_meta.last_backup_at`, Unix seconds.

`statebridge backup` writes it after the file is complete; `/metrics` reads it (one row by
its key) as `statebridge_last_backup_timestamp_seconds`, so that every instance reports the
same time, whichever host ran the backup. The backup does not contain it: a restored
database keeps the time of its own last backup.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from statebridge.db.tables import meta

KEY = "last_backup_at"


async def record_backup(conn: AsyncConnection, at: float) -> None:
    value = f"{at:.3f}"
    updated = await conn.execute(sa.update(meta).where(meta.c.key == KEY).values(value=value))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(meta).values(key=KEY, value=value))


async def last_backup(conn: AsyncConnection) -> float:
    """Unix seconds of the last successful backup; 0 when none was recorded."""
    query = sa.select(meta.c.value).where(meta.c.key == KEY)
    value = (await conn.execute(query)).scalar_one_or_none()
    return float(value) if value else 0.0
