"""The outbox relay against the real broker, on every database backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.encryption import load_cipher
from service.adapters.schema import outbox, processed_commands
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.messages import OutgoingMessage
from service.relay import OutboxRelay, create_producer
from tests.conftest import KAFKA_BOOTSTRAP


async def new_topic() -> str:
    name = f"test-relay-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA_BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


async def read_all(topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA_BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        for _ in range(50):
            batch = await consumer.getmany(tp, timeout_ms=200)
            records += batch.get(tp, [])
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


def messages(topic: str, count: int) -> list[OutgoingMessage]:
    key = str(uuid.uuid4())
    return [
        OutgoingMessage(topic, key, (("ce_id", f"event-{i}"),), None if i == count - 1 else b"{}")
        for i in range(count)
    ]


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
    producer = create_producer(KAFKA_BOOTSTRAP)
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, batch_size=10)
        assert [await relay.publish_pending() for _ in range(4)] == [10, 10, 5, 0]
        await relay.close()
    finally:
        await producer.stop()
    records = await read_all(topic, 25)
    assert [dict(r.headers)["ce_id"] for r in records] == [f"event-{i}".encode() for i in range(25)]
    assert records[-1].value is None  # a tombstone stays a tombstone
    assert await unsent(engine) == 0


async def test_a_crash_before_marking_resends_the_same_events(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await new_topic()
    await stage(engine, tmp_path, messages(topic, 3))
    producer = create_producer(KAFKA_BOOTSTRAP)
    await producer.start()
    try:
        crashing = OutboxRelay(engine, producer)

        def crash(*_: object, **__: object) -> None:
            raise RuntimeError("killed between send and mark")

        monkeypatch.setattr("service.relay.update", crash)
        with pytest.raises(RuntimeError):
            await crashing.publish_pending()
        monkeypatch.undo()
        await crashing.close()  # as a dead process's lease goes
        assert await unsent(engine) == 3  # nothing marked: the rows are still there
        restarted = OutboxRelay(engine, producer)
        assert await restarted.publish_pending() == 3
        await restarted.close()
    finally:
        await producer.stop()
    ids = [dict(r.headers)["ce_id"] for r in await read_all(topic, 6)]
    assert ids == [b"event-0", b"event-1", b"event-2"] * 2  # re-sent, same ce_ids, in order
    assert await unsent(engine) == 0


async def test_one_relay_publishes_at_a_time(engine: AsyncEngine, tmp_path: Path) -> None:
    topic = await new_topic()
    await stage(engine, tmp_path, messages(topic, 4))
    producer = create_producer(KAFKA_BOOTSTRAP)
    await producer.start()
    try:
        active, standby = OutboxRelay(engine, producer), OutboxRelay(engine, producer)
        assert await active.publish_pending() == 4
        await stage(engine, tmp_path, messages(topic, 2))
        assert await standby.publish_pending() == 0  # the lease is taken
        await active.close()
        assert await standby.publish_pending() == 2  # and handed over
        await standby.close()
    finally:
        await producer.stop()


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
    producer = create_producer(KAFKA_BOOTSTRAP)
    relay = OutboxRelay(engine, producer)
    await relay.purge()
    async with engine.connect() as conn:
        kept = (await conn.execute(select(processed_commands.c.command_id))).scalars().all()
        outbox_left = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert kept == ["recent"]
    assert outbox_left == 2  # the recently sent row and the unsent one
