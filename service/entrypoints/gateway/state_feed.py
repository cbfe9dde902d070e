"""Builds the read model from the compacted state topic: all of it at start, then follows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime

from aiokafka import TopicPartition
from sip_trunk_contracts import CloudEventHeaders, InvalidHeaders

from service.adapters import kafka_clients
from service.adapters.unreadable_records import UNREADABLE_FETCH, skip_unreadable
from service.config import Settings
from service.entrypoints.gateway.read_model import ReadModel
from service.logs import get_logger

__all__ = ["StateFeed"]

log = get_logger(__name__)

# Every change reaches the read model on the events topic first (the command bus reads it at
# once, for read-your-writes); this feed brings the same snapshots again, and all of them at
# start. So the broker may hold its fetches until it has this much or this long has passed:
# under load, one fetch carries many snapshots instead of each batch of the relay costing a
# fetch (each a request written to the broker and answered: about 6% of the gateway's CPU at
# 20 concurrent clients). Not more bytes: the fetches that end the catch-up at start wait for
# them (1 MiB cost 0.3-0.4 s of start-up with 20,000 trunks; 64 KiB, nothing measurable).
FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 100


class StateFeed:
    def __init__(self, settings: Settings, topic: str, model: ReadModel) -> None:
        self._settings = settings
        self._topic = topic
        self._model = model
        self._consumer = kafka_clients.consumer(
            settings,
            enable_auto_commit=False,
            group_id=None,
            fetch_min_bytes=FETCH_MIN_BYTES,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._task: asyncio.Task[None] | None = None
        self.caught_up = asyncio.Event()  # the gateway is not ready before this is set

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self, partitions: set[int]) -> None:
        """Read the topic's `partitions` from the beginning (the caller looked them up)."""
        await self._consumer.start()
        try:
            assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            self._consumer.assign(assigned)
            await self._consumer.seek_to_beginning(*assigned)
            ends = await self._consumer.end_offsets(assigned)
        except BaseException:
            await self._consumer.stop()
            raise
        self._task = asyncio.create_task(self._follow(ends))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _follow(self, ends: dict[TopicPartition, int]) -> None:
        consumer = self._consumer
        while True:
            # Where the poll starts: a poll that raises has drained some partitions for nothing.
            starts = {tp: await consumer.position(tp) for tp in consumer.assignment()}
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except UNREADABLE_FETCH as exc:  # a record aiokafka cannot decode: skipped, warned
                batch = {None: await skip_unreadable(self._settings, consumer, starts, exc)}
            for records in batch.values():
                for record in records:
                    self._apply(record.key, record.value, record.headers)
            if not self.caught_up.is_set() and await self._reached(ends):
                self._ready()

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        # Positions, not record offsets: compaction may have removed the last offsets.
        for tp, end in ends.items():
            if await self._consumer.position(tp) < end:
                return False
        return True

    def _ready(self) -> None:
        self.caught_up.set()
        log.info("read_model.caught_up", trunks=len(self._model))

    def _apply(
        self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
    ) -> None:
        if key is None:
            return
        if value is None:
            self._model.tombstone(key.decode(), _ce_time(headers))
            return
        try:
            self._model.snapshot(json.loads(value))
        except (ValueError, KeyError, TypeError):
            log.warning("state.unreadable", key=key.decode(errors="replace"))


def _ce_time(headers: Sequence[tuple[str, bytes | None]]) -> datetime | None:
    """When the tombstone's delete happened; None when its headers do not say."""
    try:
        return CloudEventHeaders.from_kafka(headers).time
    except InvalidHeaders:
        return None
