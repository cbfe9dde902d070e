"""The outbox relay against the real broker, on every database backend."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from service.adapters import kafka_clients
from service.adapters.encryption import load_cipher
from service.adapters.kafka_topics import ensure_topics, restore_topics
from service.adapters.outbox_relay import OutboxRelay
from service.adapters.schema import outbox, outbox_parked, processed_commands
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.service_layer.messages import OutgoingMessage
from tests.conftest import KAFKA_BOOTSTRAP

SETTINGS = Settings(kafka_bootstrap_servers=KAFKA_BOOTSTRAP)


def fresh_settings() -> Settings:
    """A deployment of its own: its topics do not exist yet."""
    prefix = f"test-relay-{uuid.uuid4().hex[:8]}."
    return Settings(kafka_bootstrap_servers=KAFKA_BOOTSTRAP, kafka_topic_prefix=prefix)


async def new_topic() -> str:
    name = f"test-relay-{uuid.uuid4().hex[:8]}"
    admin = kafka_clients.admin(SETTINGS)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


async def delete_topic(name: str) -> None:
    admin = kafka_clients.admin(SETTINGS)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def read_all(topic: str, expected: int, partitions: int = 1) -> list[Any]:
    """The topic's records, partition by partition (a key's records are on one partition)."""
    consumer = kafka_clients.consumer(SETTINGS, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        for _ in range(50):
            batch = await consumer.getmany(*tps, timeout_ms=200)
            records += [r for tp in tps for r in batch.get(tp, [])]
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


def messages(topic: str, count: int, key: str | None = None) -> list[OutgoingMessage]:
    key = key or str(uuid.uuid4())
    return [
        OutgoingMessage(topic, key, (("ce_id", f"event-{i}"),), None if i == count - 1 else b"{}")
        for i in range(count)
    ]


def relay(engine: AsyncEngine, producer: AIOKafkaProducer, **options: Any) -> OutboxRelay:
    """A relay whose own topics are those of `settings` (default: none of the test topics)."""
    settings: Settings = options.pop("settings", SETTINGS)
    return OutboxRelay(engine, producer, partial(restore_topics, settings), **options)


@contextlib.asynccontextmanager
async def started_producer() -> AsyncIterator[AIOKafkaProducer]:
    producer = kafka_clients.producer(SETTINGS)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def stage(engine: AsyncEngine, tmp_path: Path, rows: list[OutgoingMessage]) -> None:
    async with SqlUnitOfWork(engine, load_cipher(None, tmp_path)) as uow:
        await uow.outbox.add(rows)
        await uow.commit()


async def unsent(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def test_publishes_in_order_and_marks_sent(engine: AsyncEngine, tmp_path: Path) -> None:
    topic = await new_topic()
    await stage(engine, tmp_path, messages(topic, 25))
    async with started_producer() as producer:
        batched = relay(engine, producer, batch_size=10)
        assert [await batched.publish_pending() for _ in range(4)] == [10, 10, 5, 0]
        await batched.close()
    records = await read_all(topic, 25)
    assert [dict(r.headers)["ce_id"] for r in records] == [f"event-{i}".encode() for i in range(25)]
    assert records[-1].value is None  # a tombstone stays a tombstone
    assert await unsent(engine) == 0


async def test_a_crash_before_marking_resends_the_same_events(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await new_topic()
    await stage(engine, tmp_path, messages(topic, 3))
    async with started_producer() as producer:
        crashing = relay(engine, producer)

        def crash(*_: object, **__: object) -> None:
            raise RuntimeError("killed between send and mark")

        monkeypatch.setattr("service.adapters.outbox_relay.update", crash)
        with pytest.raises(RuntimeError):
            await crashing.publish_pending()
        monkeypatch.undo()
        await crashing.close()  # as a dead process's lease goes
        assert await unsent(engine) == 3  # nothing marked: the rows are still there
        restarted = relay(engine, producer)
        assert await restarted.publish_pending() == 3
        await restarted.close()
    ids = [dict(r.headers)["ce_id"] for r in await read_all(topic, 6)]
    assert ids == [b"event-0", b"event-1", b"event-2"] * 2  # re-sent, same ce_ids, in order
    assert await unsent(engine) == 0


async def test_one_relay_publishes_at_a_time(engine: AsyncEngine, tmp_path: Path) -> None:
    topic = await new_topic()
    await stage(engine, tmp_path, messages(topic, 4))
    async with started_producer() as producer:
        active, standby = relay(engine, producer), relay(engine, producer)
        assert await active.publish_pending() == 4
        await stage(engine, tmp_path, messages(topic, 2))
        assert await standby.publish_pending() == 0  # the lease is taken
        await active.close()
        assert await standby.publish_pending() == 2  # and handed over
        await standby.close()


async def test_purge_keeps_what_is_still_needed(engine: AsyncEngine, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(hours=1)
    async with engine.begin() as conn:
        for cid, at in (("old", old), ("recent", recent)):
            await conn.execute(
                insert(processed_commands).values(
                    source="/t",
                    command_id=cid,
                    command_type="x",
                    body_sha256="0" * 64,
                    outcome={},
                    processed_at=at,
                )
            )
        for sent_at in (old, recent, None):
            await conn.execute(
                insert(outbox).values(
                    topic="t", key="k", headers=[], payload=b"{}", created_at=old, sent_at=sent_at
                )
            )
    producer = kafka_clients.producer(SETTINGS)
    await relay(engine, producer).purge()
    async with engine.connect() as conn:
        kept = (await conn.execute(select(processed_commands.c.command_id))).scalars().all()
        outbox_left = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert kept == ["recent"]
    assert outbox_left == 2  # the recently sent row and the unsent one


async def test_an_own_topic_that_does_not_exist_is_created_and_published_to(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = fresh_settings()
    await stage(engine, tmp_path, messages(settings.topics.events, 3))
    async with started_producer() as producer:
        own = relay(engine, producer, settings=settings)
        with capture_logs() as logs:
            assert await asyncio.wait_for(own.publish_pending(), 10) == 3
        await own.close()
    records = await read_all(settings.topics.events, 3, settings.kafka_partitions)
    assert [dict(r.headers)["ce_id"] for r in records] == [b"event-0", b"event-1", b"event-2"]
    assert await unsent(engine) == 0
    [warning] = [e for e in logs if e["event"] == "relay.topics_recreated"]
    assert settings.topics.events in warning["topics"]


async def test_an_own_topic_deleted_while_in_use_is_recreated(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = fresh_settings()
    await ensure_topics(settings)
    key = str(uuid.uuid4())
    await stage(engine, tmp_path, messages(settings.topics.events, 2, key))
    async with started_producer() as producer:
        stop = asyncio.Event()
        running = asyncio.create_task(relay(engine, producer, settings=settings).run(stop))
        try:
            await wait_until_sent(engine)
            await delete_topic(settings.topics.events)
            await stage(engine, tmp_path, messages(settings.topics.events, 3, key))
            await wait_until_sent(engine, within=5)  # not the producer's request timeout (15 s)
        finally:
            stop.set()
            await running
    records = await read_all(settings.topics.events, 3, settings.kafka_partitions)
    assert [dict(r.headers)["ce_id"] for r in records] == [b"event-0", b"event-1", b"event-2"]


async def test_a_row_for_a_topic_of_no_known_deployment_is_parked_and_the_rest_published(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = fresh_settings()
    gone = f"old-prefix-{uuid.uuid4().hex[:8]}.sip-trunks.events"  # e.g. before a prefix change
    key = str(uuid.uuid4())
    own = settings.topics.events
    rows = [
        OutgoingMessage(own, key, (("ce_id", "event-0"),), b"{}"),
        OutgoingMessage(gone, key, (("ce_id", "lost-1"),), b"{}"),
        OutgoingMessage(own, key, (("ce_id", "event-1"),), b"{}"),
        OutgoingMessage(gone, key, (("ce_id", "lost-2"),), b"{}"),
        OutgoingMessage(own, key, (("ce_id", "event-2"),), None),
    ]
    await stage(engine, tmp_path, rows)
    async with started_producer() as producer:
        parking = relay(engine, producer, settings=settings)
        with capture_logs() as logs:
            assert await asyncio.wait_for(parking.publish_pending(), 10) == 5
            assert await parking.publish_pending() == 0
        await parking.close()
    records = await read_all(own, 3, settings.kafka_partitions)
    assert [dict(r.headers)["ce_id"] for r in records] == [b"event-0", b"event-1", b"event-2"]
    assert records[-1].value is None
    assert await unsent(engine) == 0
    async with engine.connect() as conn:
        parked = (await conn.execute(select(outbox_parked).order_by(outbox_parked.c.id))).all()
    assert [(row.topic, row.key, row.headers) for row in parked] == [
        (gone, key, [["ce_id", "lost-1"]]),
        (gone, key, [["ce_id", "lost-2"]]),
    ]
    assert all("not one of this deployment's topics" in row.reason for row in parked)
    [error] = [e for e in logs if e["event"] == "relay.rows_parked"]
    assert error["log_level"] == "error"
    assert error["topics"] == [gone]


async def wait_until_sent(engine: AsyncEngine, within: float = 10.0) -> None:
    for _ in range(int(within * 10)):
        if await unsent(engine) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"rows still unsent after {within}s")
