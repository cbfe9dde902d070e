"""A running service (worker + relay, in this process) on the real broker, and an outside
client that speaks to it the way any producer and subscriber would: raw aiokafka, contract
headers, passwords sealed with the contracts package (CONTRACT §4.2) for the worker's public
key, no other project code on the client side but the connection options (address, TLS,
SASL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sip_trunk_contracts import Topics, seal_fields

from service import bootstrap
from service.adapters.kafka_clients import connection_options
from service.adapters.kafka_topics import ensure_topics
from service.config import Settings
from service.entrypoints.relay import run_relay
from service.entrypoints.worker import run_worker
from tests.conftest import KAFKA_BOOTSTRAP

CREATE = "sip_trunks.CreateSipTrunk.v1"
UPDATE = "sip_trunks.UpdateSipTrunk.v1"
DELETE = "sip_trunks.DeleteSipTrunk.v1"
# What an outside client needs to reach the test broker (its address, and SASL when it has it).
KAFKA = connection_options(Settings(kafka_bootstrap_servers=KAFKA_BOOTSTRAP))


def isolated_settings(tmp: Path, prefix: str = "test", **settings: Any) -> Settings:
    """A service on its own topics, consumer group and data directory (`<prefix>-<run>`) on the
    test broker; SQLite in `tmp` unless `database_url` is given."""
    run = uuid.uuid4().hex[:8]
    defaults: dict[str, Any] = {
        "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,
        "kafka_topic_prefix": f"{prefix}-{run}.",
        "kafka_consumer_group": f"{prefix}-{run}",
        "data_dir": tmp,
        "log_format": "json",
    }
    return Settings(**{**defaults, **settings})


def headers_of(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers if v is not None}


@dataclass
class TopicTap:
    """Reads every partition of a topic from the beginning into memory."""

    consumer: AIOKafkaConsumer
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def run(self) -> None:
        async for record in self.consumer:
            async with self.arrived:
                self.records.append(record)
                self.arrived.notify_all()

    async def wait_for(
        self, predicate: Any, *, count: int = 1, within: float = 20.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        async def matching() -> list[ConsumerRecord[bytes, bytes]]:
            async with self.arrived:
                await self.arrived.wait_for(
                    lambda: len([r for r in self.records if predicate(r)]) >= count
                )
                return [r for r in self.records if predicate(r)]

        return await asyncio.wait_for(matching(), within)


class Client:
    """What an outside producer/subscriber does: publish commands, read the topics."""

    def __init__(self, settings: Settings, **producer_options: Any) -> None:
        """`producer_options` go to the command producer (the fault suite asks for acks=all)."""
        self.settings = settings
        self.topics = settings.topics
        # What a producer is given: the worker's public key (its dev key in the same data_dir).
        self.seal_key = bootstrap.password_seal_key(settings)
        self.producer = AIOKafkaProducer(**connection_options(settings), **producer_options)
        self.taps: dict[str, TopicTap] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.producer.start()
        for topic in (self.topics.events, self.topics.state, self.topics.dlt):
            consumer = AIOKafkaConsumer(
                **connection_options(self.settings), enable_auto_commit=False
            )
            await consumer.start()
            partitions = await self.producer.partitions_for(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            tap = TopicTap(consumer)
            self.taps[topic] = tap
            self._tasks.append(asyncio.create_task(tap.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for tap in self.taps.values():
            await tap.consumer.stop()
        await self.producer.stop()

    async def send_raw(
        self, value: bytes | None, headers: list[tuple[str, bytes]], key: str | None = None
    ) -> None:
        await self.producer.send_and_wait(
            self.topics.commands,
            key=(key or str(uuid.uuid4())).encode(),
            value=value,
            headers=headers,
        )

    async def send(
        self,
        ce_type: str,
        body: dict[str, Any],
        *,
        command_id: str | None = None,
        source: str = "/integration-test",
    ) -> dict[str, str]:
        """Publish a command with CloudEvents binary-mode headers, its password sealed as a
        producer must (`send_raw_command` sends a value as it is); return those headers."""
        value = json.dumps(self.sealed(ce_type, body)).encode()
        key = str(body.get("trunkId"))
        return await self.send_raw_command(
            ce_type, value, key=key, command_id=command_id, source=source
        )

    def sealed(self, ce_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with its password sealed: a create's fields, or an update's `changes`."""
        changes = body.get("changes")
        if ce_type == UPDATE and isinstance(changes, dict):
            return {**body, "changes": seal_fields(self.seal_key, changes)}
        return seal_fields(self.seal_key, body)

    async def send_raw_command(
        self,
        ce_type: str,
        value: bytes,
        *,
        key: str,
        command_id: str | None = None,
        source: str = "/integration-test",
    ) -> dict[str, str]:
        """Publish `value` as it is, with a command's headers; return those headers."""
        headers = {
            "ce_specversion": "1.0",
            "ce_id": command_id or str(uuid.uuid4()),
            "ce_source": source,
            "ce_type": ce_type,
            "ce_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "content-type": "application/json",
            "ce_correlationid": str(uuid.uuid4()),
        }
        await self.send_raw(value, [(k, v.encode()) for k, v in headers.items()], key=key)
        return headers

    async def events(self, header: str, value: str, count: int = 1) -> list[dict[str, Any]]:
        """Events whose `header` is `value`, as header+body dicts, once `count` have arrived."""
        records = await self.taps[self.topics.events].wait_for(
            lambda r: headers_of(r).get(header) == value, count=count
        )
        return [{"headers": headers_of(r), "body": json.loads(r.value)} for r in records]

    async def outcome(self, command: dict[str, str]) -> dict[str, Any]:
        """The answer to one sending of a command (matched by its correlation id)."""
        [event] = await self.events("ce_correlationid", command["ce_correlationid"])
        return event

    async def request(self, ce_type: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.outcome(await self.send(ce_type, body, **kw))

    def all_records(self) -> list[ConsumerRecord[bytes, bytes]]:
        return [r for tap in self.taps.values() for r in tap.records]

    def latest_state(self) -> dict[str, bytes | None]:
        latest: dict[str, bytes | None] = defaultdict(lambda: None)
        for record in self.taps[self.topics.state].records:
            latest[record.key.decode()] = record.value
        return dict(latest)


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Client]:
    """Worker and relay as asyncio tasks (the same code the CLI runs), plus a client."""
    await ensure_topics(settings)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_worker(settings, stop)),
        asyncio.create_task(run_relay(settings, stop)),
    ]
    client = Client(settings)
    await client.start()
    try:
        yield client
    finally:
        stop.set()
        await client.stop()
        await asyncio.gather(*tasks)


@dataclass(frozen=True)
class Message:
    topic: str
    headers: dict[str, bytes]
    raw: bytes  # key, value and headers


async def every_message(topics: Topics) -> list[Message]:
    """Every message of every topic of the deployment, read from the start to the end."""
    names = [topics.commands, topics.events, topics.state, topics.dlt]
    metadata = AIOKafkaProducer(**KAFKA)  # waits for partitions
    consumer = AIOKafkaConsumer(**KAFKA, enable_auto_commit=False)
    await metadata.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(name, p) for name in names for p in await metadata.partitions_for(name)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Message] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    headers = {k: v or b"" for k, v in r.headers}
                    parts = [
                        r.key or b"",
                        r.value or b"",
                        *(k.encode() + v for k, v in headers.items()),
                    ]
                    found.append(Message(r.topic, headers, b"\n".join(parts)))
        return found
    finally:
        await consumer.stop()
        await metadata.stop()
