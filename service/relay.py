"""The outbox relay: publishes committed outbox rows to Kafka in order, then marks them sent.

At least once: a crash between the send and the mark re-sends the same rows (same `ce_id`),
which consumers dedupe. Order: rows are read in id order and sent by one idempotent producer;
a lease (`adapters/leases.py`) lets one relay publish at a time, others stand by.
Per trunk, ids follow command order: one worker owns a trunk's partition and commits in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.database import READ_ONLY
from service.adapters.leases import lease_for
from service.adapters.schema import outbox, processed_commands
from service.logs import get_logger

__all__ = ["OutboxRelay", "create_producer"]

log = get_logger(__name__)

_SENT_RETENTION = timedelta(hours=24)  # sent rows kept this long for inspection, then purged
_PURGE_EVERY_S = 300.0


def create_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    # Idempotent (implies acks=all): a retried send is not written twice, and order per
    # partition holds across retries.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=15000,
    )


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.02,
        processed_retention: timedelta = timedelta(days=30),
    ) -> None:
        self._engine = engine
        # Reads take no write lock on SQLite (see database.READ_ONLY), so the worker is never
        # kept waiting while this relay waits for Kafka.
        self._reader = engine.execution_options(**READ_ONLY)
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._processed_retention = processed_retention
        self._idle = _idle_wait(engine, poll_interval_s)
        self._lease = lease_for(engine, "relay")

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows, if this relay holds the lease; return how many."""
        if not await self._lease.held():
            return 0
        async with self._reader.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                )
            ).all()
        if not rows:
            return 0
        futures = [
            await self._producer.send(
                row.topic,
                key=row.key.encode(),
                value=row.payload,
                headers=[(name, value.encode()) for name, value in row.headers],
            )
            for row in rows
        ]
        await asyncio.gather(*futures)  # every record acknowledged by all in-sync replicas
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(sent_at=datetime.now(UTC))
            )
        return len(rows)

    async def purge(self) -> None:
        """Housekeeping, by the one active relay: sent outbox rows, and processed-command rows
        old enough that no redelivery can still come (they outlive Kafka's retention)."""
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            await conn.execute(delete(outbox).where(outbox.c.sent_at < now - _SENT_RETENTION))
            await conn.execute(
                delete(processed_commands).where(
                    processed_commands.c.processed_at < now - self._processed_retention
                )
            )

    async def run(self, stop: asyncio.Event) -> None:
        log.info("relay.started")
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        try:
            while not stop.is_set():
                try:
                    sent = await self.publish_pending()
                    if sent == 0 and loop.time() >= next_purge:
                        await self.purge()
                        next_purge = loop.time() + _PURGE_EVERY_S
                except Exception as exc:  # Kafka or database hiccup: keep the rows, retry soon
                    log.warning("relay.publish_failed", error=f"{type(exc).__name__}: {exc}")
                    await _sleep_or_stop(stop, 1.0)
                    continue
                if sent:
                    log.debug("relay.published", count=sent)
                else:
                    await self._idle(stop)
        finally:
            await self.close()
        log.info("relay.stopped")

    async def close(self) -> None:
        """Give up the lease: a standby relay may take over."""
        await self._lease.release()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


IdleWait = Callable[[asyncio.Event], Awaitable[None]]


def _idle_wait(engine: AsyncEngine, poll_interval_s: float) -> IdleWait:
    """How an idle relay waits for new rows.

    SQLite: watch the database files (a commit grows the write-ahead log) with a cheap `stat`
    every 2 ms and query only when they changed, so a new event leaves within milliseconds
    without a query 50 times a second; at most `poll_interval_s * 50` apart regardless.
    Elsewhere: poll every `poll_interval_s`.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database:
        return lambda stop: _sleep_or_stop(stop, poll_interval_s)
    files = [Path(database), Path(database + "-wal")]

    def stamp() -> tuple[tuple[int, int], ...]:
        return tuple(
            (st.st_size, st.st_mtime_ns) for st in (os.stat(f) for f in files if f.exists())
        )

    last = stamp()

    async def wait(stop: asyncio.Event) -> None:
        nonlocal last
        deadline = asyncio.get_running_loop().time() + poll_interval_s * 50
        while not stop.is_set() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.002)
            now = stamp()
            if now != last:
                last = now
                return

    return wait
