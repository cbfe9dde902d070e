"""The worker's batch policy (`CommandWorker.handle_batch`), with the in-memory fakes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from sip_trunk_contracts import CloudEventHeaders
from sqlalchemy.exc import DBAPIError, OperationalError

import service.adapters.dead_letters as dead_letters_module
import service.entrypoints.command_worker as worker_module
from service.adapters.command_signatures import ProducerTrust
from service.adapters.dead_letters import DeadLetters, dead_letter_of
from service.entrypoints.command_worker import CommandWorker
from service.service_layer.handlers import CommandProcessor
from service.service_layer.ports import ConcurrentModification
from tests.unit.service.fakes import CREATE, PASSWORD, Harness, create_body, trunk_fields

# These tests are about the batch policy: every unsigned command may act.
TRUST_UNSIGNED = ProducerTrust([], require_signature=False, max_age=timedelta(days=30))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "_BACKOFF_S", 0.0)


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[ConsumerRecord[bytes, bytes], str]] = []

    async def send(self, record: ConsumerRecord[bytes, bytes], why: str) -> None:
        self.sent.append((record, why))


class Database:
    def __init__(self) -> None:
        self.up = True

    async def ok(self) -> bool:
        return self.up


class Poisoned(CommandProcessor):
    """Fails every batch that contains the command with the given id, like a bug would."""

    def __init__(self, inner: CommandProcessor, poison_id: str | None) -> None:
        self._inner = inner
        self._poison_id = poison_id
        self.down = False
        self.calls = 0
        self.failures: list[Exception] = []  # raised by the next calls, one each
        self.down_after_calls: int | None = None  # from then on, as `down`

    async def process(self, commands: Any) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        if self.down_after_calls is not None and self.calls > self.down_after_calls:
            raise OperationalError("SELECT", {}, ConnectionResetError("reset by peer"))
        if self.down or any(c.ce.id == self._poison_id for c in commands):
            raise RuntimeError("boom")
        await self._inner.process(commands)


def record(value: bytes | None, headers: list[tuple[str, bytes]], offset: int) -> Any:
    return ConsumerRecord("cmds", 0, offset, 0, 0, b"k", value, None, 1, 1, headers)


def create_record(offset: int, command_id: str | None = None) -> Any:
    ce = CloudEventHeaders.new(CREATE, "/test", "corr")
    headers = [
        (k, command_id.encode() if k == "ce_id" and command_id else v) for k, v in ce.to_kafka()
    ]
    return record(json.dumps(create_body(uuid4())).encode(), headers, offset)


def garbage(offset: int) -> Any:
    return record(b"\xffnot json", [("ce_type", b"?")], offset)


def make(h: Harness, poison_id: str | None = None) -> tuple[CommandWorker, Any, Any, Poisoned]:
    dead, database = RecordingDeadLetters(), Database()
    processor = Poisoned(h.processor, poison_id)
    return (
        CommandWorker(processor, dead, database.ok, trust=TRUST_UNSIGNED),
        dead,
        database,
        processor,
    )


async def test_a_good_batch_is_applied_in_one_commit_and_unreadables_dead_lettered() -> None:
    h = Harness()
    worker, dead, _, _ = make(h)
    batch = [create_record(0), garbage(1), create_record(2)]
    assert await worker.handle_batch(batch)
    assert h.db.commits == 1
    assert len(h.db.trunks) == 2
    assert [r.offset for r, _ in dead.sent] == [1]


async def test_a_poison_command_is_dead_lettered_alone_at_once_the_rest_applied() -> None:
    h = Harness()
    worker, dead, _, processor = make(h, poison_id="poison")
    batch = [create_record(0), create_record(1, command_id="poison"), create_record(2)]
    assert await worker.handle_batch(batch)
    assert len(h.db.trunks) == 2
    assert [(r.offset, why) for r, why in dead.sent] == [(1, "RuntimeError: boom")]
    assert processor.calls == 4  # the batch, then each command once: no retry of the poison


async def test_a_database_that_cannot_work_now_means_retry_the_batch_not_dead_letter() -> None:
    h = Harness()
    worker, dead, _, processor = make(h)
    processor.failures = [OperationalError("INSERT", {}, Exception("database is locked"))] * 2
    assert not await worker.handle_batch([create_record(0)])  # handed back, answered by none
    assert dead.sent == []
    assert await worker.handle_batch([create_record(0)])
    assert len(h.db.trunks) == 1


class ReadOnly(Exception):
    sqlstate = "25006"  # read_only_sql_transaction: a failover to a replica


async def test_a_read_only_database_is_an_outage_though_it_answers_select_1() -> None:
    h = Harness()
    worker, dead, database, processor = make(h)
    assert database.up
    processor.failures = [DBAPIError("INSERT", {}, ReadOnly("read-only"))] * 2
    assert not await worker.handle_batch([create_record(0)])
    assert dead.sent == []


async def test_a_lost_race_is_retried_alone_and_applied() -> None:
    h = Harness()
    worker, dead, _, processor = make(h)
    processor.failures = [ConcurrentModification("trunk changed concurrently")] * 3
    assert await worker.handle_batch([create_record(0)])
    assert dead.sent == []
    assert len(h.db.trunks) == 1


async def test_a_record_is_dead_lettered_once_when_its_batch_is_handed_back() -> None:
    h = Harness()
    worker, dead, _, processor = make(h, poison_id="poison")
    batch = [create_record(0, command_id="poison"), create_record(1), garbage(2)]
    processor.down_after_calls = 2  # the batch, the poison alone; then the database is gone
    assert not await worker.handle_batch(batch)
    assert [r.offset for r, _ in dead.sent] == [0]
    processor.down_after_calls = None
    assert await worker.handle_batch(batch)  # the same records again, after the rewind
    assert [r.offset for r, _ in dead.sent] == [0, 2]  # the poison not a second time
    assert len(h.db.trunks) == 1


async def test_an_unreadable_record_is_dead_lettered_even_when_reading_crashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(*_: Any) -> Any:
        raise MemoryError("a bug in reading")

    h = Harness()
    worker, dead, _, _ = make(h)
    monkeypatch.setattr(worker_module, "read_command", crash)
    assert await worker.handle_batch([create_record(0)])
    assert [why for _, why in dead.sent] == ["could not be read: MemoryError: a bug in reading"]


async def test_a_dlt_that_cannot_be_reached_means_retry_the_batch() -> None:
    class Unreachable(RecordingDeadLetters):
        async def send(self, record: ConsumerRecord[bytes, bytes], why: str) -> None:
            raise KafkaConnectionError()

    h = Harness()
    worker = CommandWorker(
        Poisoned(h.processor, None), Unreachable(), Database().ok, trust=TRUST_UNSIGNED
    )
    assert not await worker.handle_batch([create_record(0), garbage(1)])
    assert len(h.db.trunks) == 1  # applied; its repeat gets the same outcome (effectively once)


async def test_database_down_means_retry_the_batch_and_dead_letter_nothing() -> None:
    h = Harness()
    worker, dead, database, processor = make(h)
    processor.down, database.up = True, False
    batch = [create_record(0), garbage(1)]
    assert not await worker.handle_batch(batch)
    assert dead.sent == []  # not even the garbage: it goes once, when the batch commits
    assert h.db.commits == 0
    processor.down, database.up = False, True
    assert await worker.handle_batch(batch)
    assert [r.offset for r, _ in dead.sent] == [1]
    assert len(h.db.trunks) == 1


async def test_a_redelivered_batch_gets_the_same_outcomes() -> None:
    h = Harness()
    worker, _, _, _ = make(h)
    batch = [create_record(0), create_record(1)]
    await worker.handle_batch(batch)
    first = h.db.outbox[:]
    await worker.handle_batch(batch)
    repeated = h.db.outbox[len(first) :]
    outcomes = [m for m in first if m.topic.endswith("events")]
    assert [m.header("ce_id") for m in repeated] == [m.header("ce_id") for m in outcomes]
    assert len(h.db.trunks) == 2


def test_the_dlt_copy_masks_passwords_and_says_where_it_came_from() -> None:
    original = record(json.dumps(trunk_fields()).encode(), [], 7)  # a plaintext password
    copy = dead_letter_of(original, "why")
    headers = dict(copy["headers"])
    assert PASSWORD.encode() in original.value
    assert PASSWORD.encode() not in copy["value"]
    assert headers["kafka_dlt-original-topic"] == b"cmds"
    assert headers["kafka_dlt-original-partition"] == b"0"
    assert headers["kafka_dlt-original-offset"] == b"7"
    assert headers["kafka_dlt-exception-message"] == b"why"
    assert headers["kafka_dlt-redacted"] == b"password"


def test_the_dlt_copy_of_json_too_deep_to_parse_withholds_the_value() -> None:
    value = b'{"a": ' + b"[" * 40 + b'{"password": "' + PASSWORD.encode() + b'"}' + b"]" * 40 + b"}"
    copy = dead_letter_of(record(value, [], 3), "too deep")
    assert copy["value"] is None
    assert PASSWORD.encode() not in repr(copy).encode()
    headers = dict(copy["headers"])
    assert headers["kafka_dlt-value-withheld"].startswith(b"not strict JSON")
    assert headers["kafka_dlt-value-length"] == str(len(value)).encode()


class FakeProducer:
    """Stores what it is sent; refuses a value over `limit` bytes as Kafka would."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.stored: list[dict[str, Any]] = []
        self._limit = limit

    async def send(self, topic: str, **message: Any) -> Any:
        if len(message["value"] or b"") > self._limit:
            raise MessageSizeTooLargeError()
        self.stored.append(message)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


async def test_a_copy_kafka_refuses_is_replaced_by_one_that_withholds_the_value() -> None:
    producer = FakeProducer(limit=10)
    await DeadLetters(producer, "dlt").send(create_record(5), "why")  # type: ignore[arg-type]
    [stored] = producer.stored
    headers = dict(stored["headers"])
    assert stored["value"] is None
    assert headers["kafka_dlt-original-offset"] == b"5"
    assert headers["kafka_dlt-exception-message"] == b"why"
    assert headers["kafka_dlt-value-withheld"].startswith(b"Kafka refused the copy")


async def test_a_copy_that_cannot_be_masked_withholds_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(_: Any) -> Any:
        raise RecursionError()

    monkeypatch.setattr(dead_letters_module, "redact_passwords", broken)
    producer = FakeProducer()
    await DeadLetters(producer, "dlt").send(create_record(5), "why")  # type: ignore[arg-type]
    [stored] = producer.stored
    assert stored["value"] is None
    assert PASSWORD.encode() not in repr(stored).encode()
    assert b"could not be masked" in dict(stored["headers"])["kafka_dlt-value-withheld"]
