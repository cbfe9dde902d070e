"""Fixtures over real services: databases (SQLite file and PostgreSQL) and a Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.adapters.database import create_engine, migrate
from tests.conftest import POSTGRES_URL

BACKENDS = ["sqlite", "postgresql"]


NewDatabase = Callable[[], Awaitable[str]]


@pytest_asyncio.fixture(scope="session")
async def new_postgres_database() -> AsyncIterator[NewDatabase]:
    """Makes fresh databases on the test PostgreSQL server; drops them at the end."""
    admin_url = make_url(POSTGRES_URL)
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    async def new() -> str:
        name = f"sip_trunks_test_{uuid.uuid4().hex[:10]}"
        try:
            async with admin.connect() as conn:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        except OSError as exc:
            pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL} ({exc}): run `make test`")
        names.append(name)
        return admin_url.set(database=name).render_as_string(hide_password=False)

    yield new
    async with admin.connect() as conn:
        for name in names:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest_asyncio.fixture(scope="session")
async def postgres_url(new_postgres_database: NewDatabase) -> str:
    """The database the adapter tests share (emptied before each test)."""
    return await new_postgres_database()


def database_url_for(backend: str, tmp: Path, postgres: str) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'test.sqlite3'}" if backend == "sqlite" else postgres


async def new_database_for(backend: str, tmp: Path, new_postgres_database: NewDatabase) -> str:
    """A fresh database of `backend`: a SQLite file in `tmp`, or a new PostgreSQL database
    (made only for that backend)."""
    postgres = await new_postgres_database() if backend == "postgresql" else ""
    return database_url_for(backend, tmp, postgres)


@pytest_asyncio.fixture(params=BACKENDS)
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str
) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database of each backend (PostgreSQL tables truncated per test)."""
    engine = create_engine(database_url_for(request.param, tmp_path, postgres_url))
    await migrate(engine)
    if request.param == "postgresql":
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE sip_trunks, outbox, processed_commands"))
    yield engine
    await engine.dispose()
