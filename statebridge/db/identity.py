"""Which database this is: an id made anew whenever the schema is created."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from statebridge.db.tables import meta


async def read_database_id(conn: AsyncConnection) -> str:
    query = sa.select(meta.c.value).where(meta.c.key == "database_id")
    return str((await conn.execute(query)).scalar_one())


async def database_id(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return await read_database_id(conn)


async def renew_database_id(conn: AsyncConnection) -> None:
    """Give the database a new id (its content was replaced), where the schema has one."""
    names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    if meta.name in names:
        await conn.execute(
            sa.update(meta).where(meta.c.key == "database_id").values(value=uuid.uuid4().hex)
        )
