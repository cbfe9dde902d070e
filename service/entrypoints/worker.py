"""The command worker: a FastStream consumer of `sip-trunks.commands` in a consumer group.

Each poll hands a batch of raw records to `handle_batch`, which applies every recognisable
command in one database transaction (outcome events go to the outbox, published by the relay),
dead-letters what it cannot read, and only then commits the Kafka offsets. Bad input never
stops it; an unavailable database pauses it (the batch is redelivered) rather than losing data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeAlias

from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaAckableMessage
from sqlalchemy import text

from service.adapters.kafka_topics import ensure_topics
from service.bootstrap import Container, build
from service.config import Settings
from service.dead_letters import dead_letter
from service.inbound import Command, Unrecognisable, read_command
from service.logs import get_logger
from service.relay import create_producer
from service.system_trunks import provision_system_trunks

__all__ = ["CommandWorker", "create_app", "run_worker"]

log = get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
_RETRIES = (0.1, 0.5, 2.0)  # backoff of a command retried on its own before it is dead-lettered


class CommandWorker:
    def __init__(self, container: Container, dlt_producer: AIOKafkaProducer) -> None:
        self._container = container
        self._dlt = dlt_producer
        self._dlt_topic = container.settings.topics.dlt

    async def handle_batch(self, records: Sequence[Record]) -> bool:
        """Process a polled batch; True when it may be committed, False to redeliver it."""
        commands: list[tuple[Record, Command]] = []
        for record in records:
            try:
                commands.append((record, read_command(record.value, list(record.headers))))
            except Unrecognisable as exc:
                log.warning("command.dead_lettered", reason=str(exc), **_where(record))
                await dead_letter(self._dlt, self._dlt_topic, record, str(exc))
        if not commands:
            return True
        try:
            await self._container.processor.process([cmd for _, cmd in commands])
            return True
        except Exception:
            log.exception("batch.failed", size=len(commands))
        if not await self._database_ok():
            return False
        # The database works, so some command breaks the batch: isolate it.
        for record, cmd in commands:
            await self._process_alone(record, cmd)
        return True

    async def _process_alone(self, record: Record, cmd: Command) -> None:
        error = ""
        for delay in _RETRIES:
            try:
                await self._container.processor.process([cmd])
                return
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay)
        log.error("command.dead_lettered", reason=error, command_id=cmd.ce.id, **_where(record))
        await dead_letter(self._dlt, self._dlt_topic, record, error)

    async def _database_ok(self) -> bool:
        try:
            async with self._container.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.exception("database.unavailable")
            await asyncio.sleep(1.0)
            return False


def _where(record: Record) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def create_app(container: Container, dlt_producer: AIOKafkaProducer) -> FastStream:
    settings = container.settings
    worker = CommandWorker(container, dlt_producer)
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        allow_auto_create_topics=False,  # topics are created by ensure_topics, with their configs
        request_timeout_ms=15000,
        logger=None,
    )

    async def raw_records(records: tuple[Record, ...]) -> KafkaAckableMessage:
        # Hand the records over untouched: garbage bytes, tombstones and odd headers are ours
        # to judge (FastStream's default parser would drop the whole batch on them).
        return KafkaAckableMessage(body=b"", raw_message=records, consumer=subscriber.consumer)

    subscriber = broker.subscriber(
        Topic(settings.topics.commands, declare=False),
        group_id=settings.kafka_consumer_group,
        batch=True,
        max_records=settings.worker_batch_size,
        batch_timeout_ms=settings.worker_batch_timeout_ms,
        auto_offset_reset="earliest",
        # Offsets are committed by hand, after the transaction: never before (at-most-once).
        ack_policy=AckPolicy.MANUAL,
        parser=raw_records,
        decoder=lambda _: None,
        title="sip-trunks.commands",
    )

    @subscriber
    async def handle(msg: KafkaMessage) -> None:
        if await worker.handle_batch(msg.raw_message):
            await msg.ack()
        else:
            await msg.nack()  # seek back: the same batch comes again on the next poll

    return FastStream(broker, logger=None)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Migrate, create topics, provision system trunks, then consume until `stop` is set."""
    container = await build(settings)
    dlt_producer = create_producer(settings.kafka_bootstrap_servers)
    try:
        await ensure_topics(settings)
        await dlt_producer.start()
        await provision_system_trunks(container)
        app = create_app(container, dlt_producer)
        async with app:
            log.info(
                "worker.started",
                topic=settings.topics.commands,
                group=settings.kafka_consumer_group,
            )
            await stop.wait()
    finally:
        await dlt_producer.stop()
        await container.close()
        log.info("worker.stopped")
