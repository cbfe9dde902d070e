"""The outbox relay: publishes committed outbox rows to Kafka in order, then marks them sent.

At least once: a crash between the send and the mark re-sends the same rows (same `ce_id`),
which consumers dedupe. Rows are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several
relays can share a database; on SQLite the write lock serialises them (run one per file).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.schema import outbox
from service.logs import get_logger

__all__ = ["OutboxRelay", "create_producer"]

log = get_logger(__name__)

_RETENTION = timedelta(hours=24)  # sent rows kept this long for inspection, then purged
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
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; return how many were sent."""
        async with self._engine.connect() as conn, conn.begin():
            rows = (
                await conn.execute(
                    select(
                        outbox.c.id,
                        outbox.c.topic,
                        outbox.c.key,
                        outbox.c.headers,
                        outbox.c.payload,
                    )
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
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
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(sent_at=datetime.now(UTC))
            )
        return len(rows)

    async def purge_sent(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(outbox).where(outbox.c.sent_at < datetime.now(UTC) - _RETENTION)
            )

    async def run(self, stop: asyncio.Event) -> None:
        log.info("relay.started")
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not stop.is_set():
            try:
                sent = await self.publish_pending()
                if loop.time() >= next_purge:
                    await self.purge_sent()
                    next_purge = loop.time() + _PURGE_EVERY_S
            except Exception:  # Kafka or database hiccup: keep the rows, try again shortly
                log.exception("relay.publish_failed")
                sent = 0
                await _sleep_or_stop(stop, 1.0)
                continue
            if sent:
                log.debug("relay.published", count=sent)
            else:
                await _sleep_or_stop(stop, self._poll_interval_s)
        log.info("relay.stopped")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
