"""The command worker: a FastStream consumer of `sip-trunks.commands` in a consumer group.

Each poll hands a batch of raw records to `CommandWorker.handle_batch`, which applies every
recognisable command in one database transaction (outcome events go to the outbox, published by
the relay) and dead-letters what it cannot read; only then are the batch's offsets committed.
Bad input never stops it (see `command_worker.py`, the batch policy). When the database or the
broker is unavailable, the batch is rewound and retried: nothing is lost, nothing skipped. A
commit refused because a rebalance moved the partitions is normal: their new owner processes the
records again and answers them with the outcomes already stored (effectively once).

A record aiokafka cannot decode (a header key that is not UTF-8) makes every poll of its
partition raise before any record is handed out. The poll is supervised: the worker then reads
the partition itself from its committed offset (service/adapters/unreadable_records.py), hands
the readable records to the batch policy, dead-letters each unreadable one (its content
withheld), commits past them and goes on. Any other failure of the poll stops the process
(non-zero exit) with an error, so its supervisor restarts it: it never idles alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
    RebalanceInProgressError,
)
from faststream import AckPolicy, FastStream
from faststream.kafka import Topic
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import KafkaAckableMessage

from service import bootstrap
from service.adapters.database import answers
from service.adapters.unreadable_records import (
    UNREADABLE_FETCH,
    PastUnreadable,
    read_past_unreadable,
)
from service.bootstrap import Container, WorkerGraph
from service.config import Settings
from service.entrypoints.command_worker import CommandWorker, Record
from service.logs import get_logger

__all__ = ["ConsumeLoopFailed", "create_worker_app", "run_worker"]

log = get_logger(__name__)

_PAUSE_S = 1.0  # before a batch is retried after a failure of the batch as a whole
# A commit refused because the group rebalanced: the records are redelivered to their new owner.
_REBALANCED = (CommitFailedError, RebalanceInProgressError, IllegalStateError)


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


class ConsumeLoopFailed(RuntimeError):
    """Polling `sip-trunks.commands` failed in a way the worker cannot recover from here."""


async def _processed_up_to(
    consumer: AIOKafkaConsumer, owned: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """Where each partition's answered records end: its committed offset (every poll's batch
    is committed or rewound before the next poll), else the log start (offset reset earliest)."""
    starts: dict[TopicPartition, int] = {}
    for tp in owned:
        committed = await consumer.committed(tp)
        if committed is None:
            committed = (await consumer.beginning_offsets([tp]))[tp]
        starts[tp] = committed
    return starts


def create_worker_app(graph: WorkerGraph, failed: asyncio.Event | None = None) -> FastStream:
    """The worker's Kafka subscriber over the graph the composition root built; `failed` is
    set when polling fails for good (the caller then stops the process)."""
    container, broker, membership = graph.container, graph.broker, graph.membership
    settings = container.settings
    failed = failed if failed is not None else asyncio.Event()
    worker = CommandWorker(
        container.processor,
        graph.dead_letters,
        lambda: answers(container.engine),
        trust=graph.trust,
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

    async def answer(consumer: AIOKafkaConsumer, tp: TopicPartition, past: PastUnreadable) -> bool:
        """Process the readable records, dead-letter the unreadable ones, commit past them."""
        size = settings.worker_batch_size
        for i in range(0, len(past.readable), size):
            if not await worker.handle_batch(past.readable[i : i + size]):
                return False
        for offset, key in past.unreadable:
            await graph.dead_letters.send_unreadable(tp.topic, tp.partition, offset, key)
        log.warning(
            "batch.unreadable_dead_lettered",
            partition=tp.partition,
            offsets=[offset for offset, _ in past.unreadable],
            readable=len(past.readable),
        )
        try:
            await consumer.commit({tp: past.resume_at})
        except _REBALANCED as exc:  # its new owner reads it again, from the last commit
            log.info("batch.commit_skipped", reason=type(exc).__name__, partition=tp.partition)
            return True
        consumer.seek(tp, past.resume_at)
        return True

    async def get_past_unreadable(consumer: AIOKafkaConsumer, error: BaseException) -> None:
        """After a poll raised `error` on a record it cannot decode: from every owned
        partition's committed offset (what the failed poll drained of other partitions is
        fetched again), answer what precedes and follows the unreadable records in their
        batch, and move past them. Retried (paused) until done: the poll would fail again."""
        log.warning("batch.unreadable", error=f"{type(error).__name__}: {error}")
        while True:
            try:
                owned = sorted(consumer.assignment())
                starts = await _processed_up_to(consumer, owned)
                for tp, offset in starts.items():
                    consumer.seek(tp, offset)
                found = done = 0
                for tp in owned:
                    past = await read_past_unreadable(settings, tp, starts[tp])
                    if past is None:
                        continue
                    found += 1
                    if not await answer(consumer, tp, past):
                        break  # the database is away: all of it again, after a pause
                    done += 1
                if found and found == done:
                    return
                if not found:  # the poll tries again after the pause (and comes back here)
                    log.error("batch.unreadable_not_found", partitions=len(owned))
                    await asyncio.sleep(_PAUSE_S)
                    return
            except _REBALANCED as exc:
                log.info("batch.unreadable_rebalanced", reason=type(exc).__name__)
            except Exception:
                log.exception("batch.unreadable_retry")
            await asyncio.sleep(_PAUSE_S)

    async def poll(consumer: AIOKafkaConsumer) -> tuple[Record, ...]:
        # Not FastStream's batch poll: after an empty poll it sleeps batch_timeout_ms more, so
        # a command reaching an idle worker waited up to that long. `getmany` returns as soon
        # as a record arrives; its timeout only bounds how long an idle poll waits.
        batches = await consumer.getmany(
            timeout_ms=settings.worker_batch_timeout_ms, max_records=settings.worker_batch_size
        )
        return tuple(chain.from_iterable(batches.values()))

    async def supervised_poll(consumer: AIOKafkaConsumer) -> tuple[Record, ...]:
        """The poll, with what it would not survive handled here (see module doc)."""
        if failed.is_set():  # the process is stopping: poll no more
            await asyncio.Event().wait()
        try:
            return await poll(consumer)
        except UNREADABLE_FETCH as exc:
            await get_past_unreadable(consumer, exc)
            return ()
        except (KafkaError, ConsumerStoppedError):
            raise  # FastStream's own: it logs and polls again after a pause, or stops
        except Exception:
            log.exception("worker.poll_failed")
            failed.set()
            await asyncio.Event().wait()  # cancelled when the broker stops
            raise

    subscriber.get_msg = supervised_poll  # type: ignore[method-assign]

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
            failed = asyncio.Event()
            app = create_worker_app(graph, failed)
            _freeze_startup_objects()
            periodic = asyncio.create_task(_reconcile_periodically(graph.container, stop))
            async with app:
                log.info("worker.started", topic=settings.topics.commands)
                await _first_of(stop, failed)
            stop.set()
            await periodic
            if failed.is_set():
                log.error("worker.failed", hint="polling failed: exiting so a supervisor restarts")
                raise ConsumeLoopFailed("polling the commands failed (see worker.poll_failed)")
    finally:
        log.info("worker.stopped")


_GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections (CPython's default: 700)


def _freeze_startup_objects() -> None:
    """Keep the objects of start-up (modules, the graph, SQLAlchemy's and pydantic's caches)
    out of every later garbage collection: they live as long as the process, and scanning them
    again at each full collection cost the worker ~20 us of CPU per command (measured). A batch
    holds its commands' objects until it ends, so young collections at the default threshold
    kept scanning them (600 per 10,000 commands): ~8 us more per command."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


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
