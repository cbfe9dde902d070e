"""A record whose header key is not UTF-8, on the real broker.

aiokafka decodes header keys while it iterates a fetch, so such a record makes `getmany` raise
before any record of that fetch reaches the worker. It must get its one answer (a DLT record
for its offset, content withheld), and every readable command around it its outcome.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sip_trunk_contracts import CommandEnvelope

from service.bootstrap import CLI_SOURCE, cli_bus
from service.entrypoints.gateway.read_model import ReadModel
from service.entrypoints.gateway.state_feed import StateFeed
from tests.integration.kafka_stack import (
    CREATE,
    Client,
    headers_of,
    isolated_settings,
    running_service,
)
from tests.integration.raw_batches import RawRecord, produce_batch

GATEWAY = {"ipOrDomain": "sip.example.com", "port": 5060, "name": "Primary"}
BAD_KEY = b"\xff\xfe-not-utf8"


@pytest_asyncio.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    tmp = tmp_path_factory.mktemp("unreadable-headers")
    settings = isolated_settings(tmp, "unreadable")
    async with running_service(settings) as client:
        yield client


def create_command() -> tuple[RawRecord, dict[str, str]]:
    """A good CreateSipTrunk as a raw record, and its headers."""
    trunk_id = str(uuid.uuid4())
    body = {"trunkId": trunk_id, "tenantId": "acme", "name": "Office", "gateways": [GATEWAY]}
    headers = {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid4()),
        "ce_source": "/integration-test",
        "ce_type": CREATE,
        "ce_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "content-type": "application/json",
        "ce_correlationid": str(uuid.uuid4()),
    }
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return (trunk_id.encode(), json.dumps(body).encode(), raw), headers


def poison() -> RawRecord:
    _, headers = create_command()
    raw: list[tuple[bytes, bytes | None]] = [(k.encode(), v.encode()) for k, v in headers.items()]
    return b"poison-key", b'{"secret": "not to be copied"}', [*raw, (BAD_KEY, b"x")]


async def end_offset(service: Client, partition: int) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from service.adapters.kafka_clients import connection_options

    consumer = AIOKafkaConsumer(**connection_options(service.settings))
    await consumer.start()
    try:
        tp = TopicPartition(service.topics.commands, partition)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def dead_letters_for(service: Client, partition: int, offset: int) -> list[Any]:
    def of_offset(r: Any) -> bool:
        h = headers_of(r)
        return (
            h.get("kafka_dlt-original-topic") == service.topics.commands
            and h.get("kafka_dlt-original-partition") == str(partition)
            and h.get("kafka_dlt-original-offset") == str(offset)
        )

    dlt = service.taps[service.topics.dlt]
    await dlt.wait_for(of_offset, within=30)
    return [r for r in dlt.records if of_offset(r)]


def assert_withheld(record: Any) -> None:
    headers = headers_of(record)
    assert record.value is None
    assert headers["kafka_dlt-value-withheld"]
    assert "UTF-8" in headers["kafka_dlt-exception-message"]
    assert not any(k.startswith("ce_") for k in headers)


async def test_a_header_key_not_utf8_is_dead_lettered_and_the_next_command_answered(
    service: Client,
) -> None:
    partition = 0
    offset = await end_offset(service, partition)
    await produce_batch(service.producer, service.topics.commands, partition, [poison()])
    good, headers = create_command()
    await produce_batch(service.producer, service.topics.commands, partition, [good])

    outcome = await service.outcome(headers)  # within 20 s, or the worker is stalled
    assert outcome["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1"
    [dead] = await dead_letters_for(service, partition, offset)
    assert_withheld(dead)
    assert dead.key == b"poison-key"


async def test_readable_records_in_the_same_batch_are_answered(service: Client) -> None:
    """One batch: good, poison, good: aiokafka can read neither good one, the worker must."""
    partition = 1
    offset = await end_offset(service, partition)
    (first, first_headers), (last, last_headers) = create_command(), create_command()
    await produce_batch(
        service.producer, service.topics.commands, partition, [first, poison(), last]
    )
    for headers in (first_headers, last_headers):
        outcome = await service.outcome(headers)
        assert outcome["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1"
    [dead] = await dead_letters_for(service, partition, offset + 1)
    assert_withheld(dead)
    # and the worker goes on: a later command on another partition is answered too
    later, later_headers = create_command()
    await produce_batch(service.producer, service.topics.commands, 2, [later])
    assert (await service.outcome(later_headers))["headers"]["ce_type"].endswith("TrunkCreated.v1")
    for r in service.taps[service.topics.dlt].records:  # nothing readable was dead-lettered
        assert headers_of(r).get("ce_id") not in {
            first_headers["ce_id"],
            last_headers["ce_id"],
            later_headers["ce_id"],
        }


async def test_the_gateway_readers_skip_what_they_cannot_read(service: Client) -> None:
    """The events reader (replies) and the state feed (read model) skip such a record with a
    warning and go on: every partition of both topics holds one before the answer."""
    settings = service.settings
    model = ReadModel()
    bus = cli_bus(settings)
    feed = StateFeed(settings, settings.topics.state, model)
    await bus.start()
    await feed.start(set(await service.producer.partitions_for(settings.topics.state)))
    try:
        for topic in (settings.topics.events, settings.topics.state):
            for partition in sorted(await service.producer.partitions_for(topic)):
                await produce_batch(service.producer, topic, partition, [poison()])
        trunk_id = str(uuid.uuid4())
        command = CommandEnvelope.create(
            {"name": "Office", "gateways": [GATEWAY]},
            trunk_id=trunk_id,
            tenant_id="acme",
            source=CLI_SOURCE,
        )
        outcome = await bus.request(command, timeout_s=20)
        assert outcome.headers.type == "sip_trunks.TrunkCreated.v1"
        await asyncio.wait_for(feed.caught_up.wait(), 20)
        for _ in range(200):
            if model.get(trunk_id) is not None:
                break
            await asyncio.sleep(0.1)
        assert model.get(trunk_id) is not None
        assert bus.running
        assert feed.running
    finally:
        await feed.stop()
        await bus.stop()
