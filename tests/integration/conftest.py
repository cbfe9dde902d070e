"""Fixtures over real services: databases (SQLite file and PostgreSQL) and a Kafka broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.adapters.database import create_engine, migrate
from tests.conftest import POSTGRES_URL

BACKENDS = ["sqlite", "postgresql"]


@pytest_asyncio.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the test PostgreSQL server, dropped at the end of the session."""
    admin_url = make_url(POSTGRES_URL)
    name = f"sip_trunks_test_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL not reachable at {POSTGRES_URL} ({exc}): run `make test`")
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def database_url_for(backend: str, tmp: Path, postgres: str) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'test.sqlite3'}" if backend == "sqlite" else postgres


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
