"""The command worker: a FastStream consumer of `sip-trunks.commands` in a consumer group.

Each poll hands a batch of raw records to `CommandWorker.handle_batch`, which applies every
recognisable command in one database transaction (outcome events go to the outbox, published by
the relay) and dead-letters what it cannot read; only then are the batch's offsets committed.
Bad input never stops it (see `command_worker.py`, the batch policy). When the database or the
broker is unavailable, the batch is rewound and retried: nothing is lost, nothing skipped. A
commit refused because a rebalance moved the partitions is normal: their new owner processes the
records again and answers them with the outcomes already stored (effectively once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from faststream import AckPolicy, FastStream
from faststream.kafka import Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaAckableMessage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service import bootstrap
from service.bootstrap import Container, WorkerGraph
from service.config import Settings
from service.entrypoints.command_worker import CommandWorker, Record
from service.logs import get_logger

__all__ = ["create_worker_app", "run_worker"]

log = get_logger(__name__)

_PAUSE_S = 1.0  # before a batch is retried after a failure of the batch as a whole
# A commit refused because the group rebalanced: the records are redelivered to their new owner.
_REBALANCED = (CommitFailedError, RebalanceInProgressError, IllegalStateError)


async def _database_answers(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure here means "not now"
        log.error("database.unavailable", error=type(exc).__name__)
        return False


async def _commit(consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
    """Commit exactly this batch's offsets, for the partitions this consumer still owns."""
    offsets: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
    owned = consumer.assignment()
    await consumer.commit({tp: offset for tp, offset in offsets.items() if tp in owned})


def _rewind(consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
    """Seek back to the batch's first records, so the next poll delivers them again."""
    first: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        first[tp] = min(first.get(tp, r.offset), r.offset)
    owned = consumer.assignment()  # a partition lost to a rebalance is its new owner's now
    for tp, offset in first.items():
        if tp in owned:
            consumer.seek(tp, offset)


def create_worker_app(graph: WorkerGraph) -> FastStream:
    """The worker's Kafka subscriber over the graph the composition root built."""
    container, broker, membership = graph.container, graph.broker, graph.membership
    settings = container.settings
    worker = CommandWorker(
        container.processor,
        graph.dead_letters,
        lambda: _database_answers(container.engine),
    )

    async def raw_records(records: tuple[Record, ...]) -> KafkaAckableMessage:
        # Hand the records over untouched: garbage bytes, tombstones and odd headers are ours
        # to judge (FastStream's default parser would drop the whole batch on them).
        return KafkaAckableMessage(body=b"", raw_message=records, consumer=subscriber.consumer)

    def no_decoding(_: Any) -> None:
        return None

    subscriber = broker.subscriber(
        Topic(settings.topics.commands, declare=False),
        group_id=membership.group_id,
        group_instance_id=membership.instance_id,  # static membership: fast restarts
        listener=membership,
        batch=True,
        max_records=settings.worker_batch_size,
        batch_timeout_ms=settings.worker_batch_timeout_ms,
        auto_offset_reset="earliest",
        # Offsets are committed by hand, after the transaction: never before (at-most-once).
        ack_policy=AckPolicy.MANUAL,
        parser=raw_records,
        decoder=no_decoding,
        title="sip-trunks.commands",
    )

    @subscriber
    async def handle(msg: KafkaMessage) -> None:
        records: tuple[Record, ...] = msg.raw_message
        consumer = subscriber.consumer
        try:
            if await worker.handle_batch(records):
                await _commit(consumer, records)
                return
        except _REBALANCED as exc:  # the partitions moved on: nothing is wrong, nothing lost
            log.info("batch.commit_skipped", reason=type(exc).__name__, size=len(records))
            return
        except Exception:  # never let a batch slip by uncommitted and unretried
            log.exception("batch.crashed", size=len(records))
        _rewind(consumer, records)
        await asyncio.sleep(_PAUSE_S)

    return FastStream(broker, logger=None)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Migrate, create topics, provision system trunks, then consume until `stop` is set."""
    try:
        async with bootstrap.worker(settings, until=stop) as graph:
            app = create_worker_app(graph)
            periodic = asyncio.create_task(_reconcile_periodically(graph.container, stop))
            async with app:
                log.info("worker.started", topic=settings.topics.commands)
                await stop.wait()
            await periodic
    finally:
        log.info("worker.stopped")


async def _reconcile_periodically(container: Container, stop: asyncio.Event) -> None:
    """Every RECONCILE_INTERVAL_S (with a provider): repairs what a crash or a hand left behind."""
    interval = container.settings.reconcile_interval_s
    if container.listing is None or interval <= 0:
        return

    seen: dict[str, float] = {}  # orphans across runs: deleted once orphaned for the grace
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await container.reconcile(seen=seen)
        except Exception as exc:  # LiveKit or the database down: try again next time
            log.warning("reconcile.failed", error=f"{type(exc).__name__}: {exc}")
