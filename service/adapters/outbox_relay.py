"""The outbox relay: publishes committed outbox rows to Kafka in order, then marks them sent.

At least once: a crash between the send and the mark re-sends the same rows (same `ce_id`),
which consumers dedupe. Order: rows are read in id order and sent by one idempotent producer;
a lease (`adapters/leases.py`) lets one relay publish at a time, others stand by.
Per trunk, ids follow command order: one worker owns a trunk's partition and commits in order.

A row whose topic does not exist must not hold up the rows behind it: one of this deployment's
own topics is recreated (`restore_topics`) and the row is sent; a topic it does not know (the
row was written before KAFKA_TOPIC_PREFIX changed, say) is not invented: the row is moved to
`outbox_parked` with the reason, an error is logged, and the rest goes on. Every row still
sent keeps its order on its topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence, Set
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.database import READ_ONLY
from service.adapters.leases import lease_for
from service.adapters.outbox_wakeup import sleep_or_stop, wakeup_for
from service.adapters.schema import outbox, outbox_parked, processed_commands
from service.logs import get_logger
from service.service_layer.messages import kafka_headers

__all__ = ["OutboxRelay", "RestoreTopics"]

log = get_logger(__name__)

_SENT_RETENTION = timedelta(hours=24)  # sent rows kept this long for inspection, then purged
_PURGE_EVERY_S = 300.0
_SLOW_SEND_S = 1.0  # acknowledgements slower than this: check that the topics still exist

# Recreates those of the given missing topics that are this deployment's; returns them.
RestoreTopics = Callable[[Set[str]], Awaitable[Set[str]]]


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        restore_topics: RestoreTopics,
        *,
        batch_size: int = 500,
        processed_retention: timedelta = timedelta(days=30),
    ) -> None:
        self._engine = engine
        # Reads take no write lock on SQLite (see database.READ_ONLY), so the worker is never
        # kept waiting while this relay waits for Kafka.
        self._reader = engine.execution_options(**READ_ONLY)
        self._producer = producer
        self._restore_topics = restore_topics
        self._present: set[str] = set()  # topics seen in the cluster since the last failure
        self._batch_size = batch_size
        self._processed_retention = processed_retention
        self._wakeup = wakeup_for(engine)
        self._lease = lease_for(engine, "relay")

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows, if this relay holds the lease; return how many
        rows left the queue (sent, or parked for a topic that is gone)."""
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
        gone = await self._missing_topics({row.topic for row in rows})
        if gone:
            await self._park([row for row in rows if row.topic in gone])
        sending = [row for row in rows if row.topic not in gone]
        try:
            await self._send(sending)
        except Exception:
            self._present.clear()  # a topic deleted meanwhile is found on the next try
            raise
        return len(rows)

    async def _send(self, rows: Sequence[Row[Any]]) -> None:
        if not rows:
            return
        futures = [
            await self._producer.send(
                row.topic,
                key=row.key.encode(),
                value=row.payload,
                headers=kafka_headers(row.headers),
            )
            for row in rows
        ]
        _, slow = await asyncio.wait(futures, timeout=_SLOW_SEND_S)
        if slow:
            # The producer retries a send to a topic that was deleted until its request
            # timeout: recreate it now (if it is ours) and the retry gets through.
            self._present.clear()
            await self._missing_topics({row.topic for row in rows})
        await asyncio.gather(*futures)  # every record acknowledged by all in-sync replicas
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([row.id for row in rows]))
                .values(sent_at=datetime.now(UTC))
            )

    async def _missing_topics(self, names: set[str]) -> set[str]:
        """Those of `names` the cluster does not have, once this deployment's own are restored.

        Asks the cluster only about topics not seen since the last failure: a send to a topic
        that is gone would only time out (after the producer's request timeout).
        """
        unseen = names - self._present
        if not unseen:
            return set()
        cluster = await self._producer.client.fetch_all_metadata()
        missing = unseen - set(cluster.topics())
        if missing:
            restored = await self._restore_topics(missing)
            if restored:
                log.warning("relay.topics_recreated", topics=sorted(restored))
            missing -= restored
        self._present |= unseen - missing
        return missing

    async def _park(self, rows: Sequence[Row[Any]]) -> None:
        now = datetime.now(UTC)
        reason = "topic does not exist and is not one of this deployment's topics"
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(outbox_parked),
                [
                    {
                        "id": row.id,
                        "topic": row.topic,
                        "key": row.key,
                        "headers": row.headers,
                        "payload": row.payload,
                        "created_at": row.created_at,
                        "parked_at": now,
                        "reason": reason,
                    }
                    for row in rows
                ],
            )
            await conn.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        log.error(
            "relay.rows_parked",
            reason=reason,
            topics=sorted({row.topic for row in rows}),
            outbox_ids=[row.id for row in rows],
            hint="see table outbox_parked; move a row back to outbox to send it",
        )

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
                    await sleep_or_stop(stop, 1.0)
                    continue
                if sent:
                    log.debug("relay.published", count=sent)
                else:
                    await self._wakeup.wait(stop)
        finally:
            await self.close()
        log.info("relay.stopped")

    async def close(self) -> None:
        """Give up the lease: a standby relay may take over."""
        await self._wakeup.close()
        await self._lease.release()
