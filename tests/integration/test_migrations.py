"""The Alembic migrations build exactly the schema `service/adapters/schema.py` declares."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters import database
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


async def test_a_locked_database_at_start_is_waited_for(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes switching a new SQLite file to WAL: the loser gets "database is locked" at
    once (SQLite does not wait when waiting could deadlock). A service process tries again; a
    one-shot caller (no `until`) gets the error (a CI run lost its relay to this)."""
    attempts = 0
    migrate_once = database._migrate_once

    async def locked_once(target: AsyncEngine) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            locked = sqlite3.OperationalError("database is locked")
            raise OperationalError("PRAGMA journal_mode=WAL", {}, locked)
        await migrate_once(target)

    monkeypatch.setattr(database, "_migrate_once", locked_once)
    await migrate(engine, until=asyncio.Event())
    assert attempts == 2
    attempts = 0
    with pytest.raises(OperationalError, match="database is locked"):
        await migrate(engine)
