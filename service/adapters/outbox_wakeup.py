"""How an idle relay learns that the outbox has new rows: woken by the commit, not by a timer.

- PostgreSQL: a statement trigger on `outbox` (migration 0003) calls `pg_notify`, delivered when
  the inserting transaction commits; the relay LISTENs on its own connection.
- SQLite: a commit writes the write-ahead log; the relay watches the database's folder with
  Linux inotify and wakes on a write to the database's files. Where inotify is missing, it
  checks the files' size and time every 2 ms instead.

Either way a wake-up is never lost (what arrives while the relay is busy is kept by the kernel
or the listener until the next wait) and the relay still looks every `IDLE_RECHECK` when no
signal came (a lost connection, a trigger dropped by hand). Any other database: a plain poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.logs import get_logger

__all__ = ["CHANNEL", "Wakeup", "sleep_or_stop", "wakeup_for"]

log = get_logger(__name__)

CHANNEL = "sip_trunks_outbox"  # the trigger of migration 0003 notifies it
IDLE_RECHECK = 1.0  # seconds: the longest an idle relay goes without a look at the outbox
_STAT_EVERY = 0.002


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _signal_or_stop(signal: asyncio.Event, stop: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(signal.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=IDLE_RECHECK, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    signal.clear()


class Wakeup(Protocol):
    async def wait(self, stop: asyncio.Event) -> None:
        """Until there may be new rows, `stop` is set, or at most IDLE_RECHECK."""

    async def close(self) -> None: ...


def wakeup_for(engine: AsyncEngine) -> Wakeup:
    database = engine.url.database
    if engine.dialect.name == "postgresql":
        return _PostgresListener(engine)
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        return _SqliteWatch(Path(database))
    return _Poll(IDLE_RECHECK)  # an in-memory SQLite: no other process writes it


@dataclass
class _Poll:
    interval_s: float

    async def wait(self, stop: asyncio.Event) -> None:
        await sleep_or_stop(stop, self.interval_s)

    async def close(self) -> None:
        pass


class _PostgresListener:
    """LISTEN on a connection of its own, (re)opened by the wait that finds it gone."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._raw: Any = None  # asyncpg's connection under `_conn`
        self._signal = asyncio.Event()

    def _notified(self, *_: object) -> None:
        self._signal.set()

    async def wait(self, stop: asyncio.Event) -> None:
        if self._raw is None or self._raw.is_closed():
            await self._listen(stop)
            return  # rows may have come before the LISTEN: look now
        await _signal_or_stop(self._signal, stop)

    async def _listen(self, stop: asyncio.Event) -> None:
        await self.close()
        try:
            self._conn = await self._engine.connect()
            self._raw = (await self._conn.get_raw_connection()).driver_connection
            await self._raw.add_listener(CHANNEL, self._notified)
            self._raw.add_termination_listener(self._notified)
        except Exception as exc:  # the database is down: the relay's own queries say so too
            log.warning("relay.listen_failed", error=f"{type(exc).__name__}: {exc}")
            await self.close()
            await sleep_or_stop(stop, IDLE_RECHECK)

    async def close(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()  # never back to the pool: it holds a LISTEN
                await conn.close()


# inotify(7): the events that mean a file in the folder was written or replaced.
_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


class _SqliteWatch:
    """inotify on the database's folder (its -wal and -journal files come and go), started by
    the first wait; where inotify is not available, a `stat` of the files every 2 ms."""

    def __init__(self, database: Path) -> None:
        self._database = database
        name = database.name.encode()
        self._names = frozenset({name, name + b"-wal", name + b"-journal"})
        self._fd: int | None = None
        self._inotify = True  # until it fails once
        self._signal = asyncio.Event()
        self._files = (database, Path(f"{database}-wal"))
        self._stat: tuple[tuple[int, int], ...] | None = None  # taken when the fallback starts

    async def wait(self, stop: asyncio.Event) -> None:
        if self._fd is None and not (self._inotify and self._watch()):
            self._inotify = False
            await self._poll_stat(stop)
        else:
            await _signal_or_stop(self._signal, stop)

    def _watch(self) -> bool:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (AttributeError, OSError):
            return False
        if fd < 0:
            return False
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(fd, bytes(self._database.parent), mask) < 0:
            os.close(fd)
            return False
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._readable)
        self._signal.set()  # rows may have come before the watch: look now
        return True

    def _readable(self) -> None:
        assert self._fd is not None
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self._fd, 65536):
                offset = 0
                while offset < len(data):
                    _, _, _, length = _EVENT.unpack_from(data, offset)
                    start = offset + _EVENT.size
                    if data[start : start + length].rstrip(b"\0") in self._names:
                        self._signal.set()
                    offset = start + length

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        return tuple(
            (st.st_size, st.st_mtime_ns) for st in (os.stat(f) for f in self._files if f.exists())
        )

    async def _poll_stat(self, stop: asyncio.Event) -> None:
        deadline = asyncio.get_running_loop().time() + IDLE_RECHECK
        while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_STAT_EVERY)
            if (now := self._stamp()) != self._stat:
                self._stat = now
                return

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
