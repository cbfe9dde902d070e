"""The outbox relay process: outbox rows → `sip-trunks.events` / `sip-trunks.state`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

from service.adapters import kafka_clients
from service.adapters.database import create_engine, migrate
from service.adapters.kafka_topics import restore_topics
from service.adapters.outbox_relay import OutboxRelay
from service.config import Settings

__all__ = ["run_relay"]


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings.resolved_database_url)
    producer = kafka_clients.producer(settings)
    try:
        # The relay may start before the worker created the schema, or during an outage.
        await migrate(engine, until=stop)
        await producer.start()
        relay = OutboxRelay(
            engine,
            producer,
            partial(restore_topics, settings),
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            processed_retention=timedelta(days=settings.processed_retention_days),
        )
        await relay.run(stop)
    finally:
        await producer.stop()
        await engine.dispose()
