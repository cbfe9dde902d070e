"""One active holder per database of a named job: the others wait as hot standbys.

The relay takes one (publishing in outbox order is what keeps each trunk's events in order,
and two relays sending at once would interleave); so does reconciliation. PostgreSQL: a
session advisory lock on a connection the lease keeps open (checked before every use; lost
with the connection). SQLite: an exclusive `flock` on a file beside the database, which the
kernel releases when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.service_layer.ports import Lease

__all__ = ["Lease", "lease_for"]


class PostgresLease:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self._engine = engine
        self._name = f"sip-trunks-{name}"
        self._conn: AsyncConnection | None = None

    async def held(self) -> bool:
        try:
            if self._conn is not None:
                await self._conn.execute(text("SELECT 1"))  # still ours while the session lives
                await self._conn.commit()  # never idle in a transaction
                return True
            conn = await self._engine.connect()
            self._conn = conn  # from here on, release() closes it whatever happens
            lock = text("SELECT pg_try_advisory_lock(hashtext(:name))")
            got = (await conn.execute(lock, {"name": self._name})).scalar()
            await conn.commit()
            if not got:
                self._conn = None
                await conn.close()
            return bool(got)
        except Exception:
            await self.release()
            raise

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # Ending the session releases the lock; close() would only return it to the pool.
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()


class FileLease:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    async def held(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


def lease_for(engine: AsyncEngine, name: str) -> Lease:
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:":
            raise ValueError(f"the {name} lease needs a SQLite database file")
        return FileLease(Path(f"{database}.{name}-lock"))
    return PostgresLease(engine, name)
