"""The Alembic migrations build exactly the schema `service/adapters/schema.py` declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.database import migrate
from service.adapters.schema import metadata


async def test_migrated_database_matches_the_declared_schema(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert diff == []


async def test_migrating_twice_is_a_no_op(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)
