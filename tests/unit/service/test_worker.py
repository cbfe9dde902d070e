"""The worker's batch policy (`CommandWorker.handle_batch`), with the in-memory fakes."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import ConsumerRecord
from fakes import CREATE, PASSWORD, Harness, create_body
from sip_trunk_contracts import CloudEventHeaders

import service.entrypoints.worker as worker_module
from service.dead_letters import dead_letter_of
from service.entrypoints.worker import CommandWorker
from service.handlers import CommandProcessor


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

    async def process(self, commands: Any) -> None:
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
    return CommandWorker(processor, dead, database.ok), dead, database, processor


async def test_a_good_batch_is_applied_in_one_commit_and_unreadables_dead_lettered() -> None:
    h = Harness()
    worker, dead, _, _ = make(h)
    batch = [create_record(0), garbage(1), create_record(2)]
    assert await worker.handle_batch(batch)
    assert h.db.commits == 1
    assert len(h.db.trunks) == 2
    assert [r.offset for r, _ in dead.sent] == [1]


async def test_a_poison_command_is_dead_lettered_alone_the_rest_applied() -> None:
    h = Harness()
    worker, dead, _, _ = make(h, poison_id="poison")
    batch = [create_record(0), create_record(1, command_id="poison"), create_record(2)]
    assert await worker.handle_batch(batch)
    assert len(h.db.trunks) == 2
    assert [(r.offset, why) for r, why in dead.sent] == [(1, "RuntimeError: boom")]


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
    original = create_record(7)
    copy = dead_letter_of(original, "why")
    headers = dict(copy["headers"])
    assert PASSWORD.encode() in original.value
    assert PASSWORD.encode() not in copy["value"]
    assert headers["kafka_dlt-original-topic"] == b"cmds"
    assert headers["kafka_dlt-original-partition"] == b"0"
    assert headers["kafka_dlt-original-offset"] == b"7"
    assert headers["kafka_dlt-exception-message"] == b"why"
    assert headers["kafka_dlt-redacted"] == b"password"
