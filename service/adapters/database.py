"""Engine factory and schema migrations, for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.logs import get_logger

__all__ = ["READ_ONLY", "answers", "cannot_work_now", "create_engine", "migrate", "unreachable"]

log = get_logger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"

# Execution options of a connection that only reads: on SQLite it begins a deferred (shared)
# transaction instead of taking the write lock.
READ_ONLY = {"sqlite_read_only": True}


def create_engine(url: str) -> AsyncEngine:
    """One engine per process; callers share it (never one per message)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_size=5, max_overflow=5, pool_pre_ping=True, hide_parameters=True
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: error messages (logs, DLT headers) must not carry row values.
    engine = create_async_engine(url, hide_parameters=True)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    # WAL lets the relay read while the worker writes; BEGIN IMMEDIATE takes the write lock up
    # front so two writers queue on busy_timeout instead of failing on a lock upgrade.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: switching a new file to WAL takes a lock that a process starting beside this
        # one may hold; without the timeout set, that fails at once ("database is locked").
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("sqlite_read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Alembic keeps its running context in module globals: one migration at a time per process.
_migrating = asyncio.Lock()


_RETRY_MAX_S = 5.0
# PostgreSQL SQLSTATE classes that say the server cannot take work now, not that the data is
# wrong: 08 connection, 25 transaction state (a read-only replica after a failover), 40
# serialization failure and deadlock, 53 insufficient resources (disk full), 57 operator
# intervention (shutting down), 58 system error.
_OUTAGE_CLASSES = frozenset({"08", "25", "40", "53", "57", "58"})
_LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate(exc: DBAPIError) -> str | None:
    code = getattr(exc.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def unreachable(exc: BaseException) -> bool:
    """The database cannot be reached: refused, reset, or not accepting connections yet."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, DBAPIError):
        code = _sqlstate(exc) or ""
        return exc.connection_invalidated or code.startswith("08") or code == "57P03"
    return False


def cannot_work_now(exc: BaseException) -> bool:
    """The database is unreachable or refuses work for a while: no fault of the data, so the
    work is retried later, never dead-lettered. The one list of such errors."""
    if unreachable(exc) or isinstance(exc, TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    code = _sqlstate(exc)
    if code is not None:
        return code[:2] in _OUTAGE_CLASSES or code == _LOCK_NOT_AVAILABLE
    # SQLite (no SQLSTATE): locked, busy, I/O error, disk full are all OperationalErrors.
    return isinstance(exc, OperationalError | InterfaceError)


async def answers(engine: AsyncEngine) -> bool:
    """Whether the database answers a query now (any failure means "not now")."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        log.error("database.unavailable", error=type(exc).__name__)
        return False


async def migrate(engine: AsyncEngine, *, until: asyncio.Event | None = None) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already).

    Safe when worker and relay start together: processes queue on an advisory lock
    (PostgreSQL) or on SQLite's write lock (BEGIN IMMEDIATE). With `until` (a long-running
    process's stop event), a database that cannot work now (`cannot_work_now`) is waited for,
    with backoff, until it answers or `until` is set: a process (re)started during an outage
    comes up with the database instead of exiting, and one that loses the race to switch a new
    SQLite file to WAL (SQLite answers "database is locked" at once there, without waiting out
    busy_timeout, when waiting could deadlock) tries again. Without `until`, the first failure
    is raised (CLI, tests).
    """
    delay = 0.5
    while True:
        try:
            await _migrate_once(engine)
            return
        except Exception as exc:
            if until is None or until.is_set() or not cannot_work_now(exc):
                raise
            log.warning("database.unavailable", error=type(exc).__name__, retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), delay)
            delay = min(delay * 2, _RETRY_MAX_S)


async def _migrate_once(engine: AsyncEngine) -> None:
    async with _migrating, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sip-trunks-migrate'))"))
        await conn.run_sync(lambda sync_conn: command.upgrade(_alembic_config(sync_conn), "head"))
