"""In-memory fakes of the service ports and small builders for the service-layer tests.

Imported as `tests.unit.service.fakes`. No I/O: no Kafka, no database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from uuid import UUID, uuid4

from sip_trunk_contracts import (
    CloudEventHeaders,
    CommandEnvelope,
    CreateSipTrunk,
    DeleteSipTrunk,
    Topics,
    UnsealablePassword,
    UpdateSipTrunk,
    seal_fields,
)

from service.adapters.password_seal import PasswordKeys
from service.domain import Reason, Rejected, SipTrunk, upsert_system_trunk
from service.service_layer.handlers import CommandProcessor, Services
from service.service_layer.inbound import InboundCommand, read_command
from service.service_layer.messages import OutgoingMessage
from service.service_layer.outgoing import MessageFactory
from service.service_layer.ports import ProcessedCommand

CREATE = CreateSipTrunk.CE_TYPE
UPDATE = UpdateSipTrunk.CE_TYPE
DELETE = DeleteSipTrunk.CE_TYPE

SERVICE_SOURCE = "/sip-trunk-service"
TOPICS = Topics.with_prefix("test.")
TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
PASSWORD = "Plaintext-Pa55word"  # distinctive, so a leak is found by a byte scan
START = datetime(2024, 1, 15, 9, 30, 0, tzinfo=UTC)
# The worker's key pair in these tests: producers seal with SEAL_KEY (CONTRACT §4.2).
SEAL_KEYS = PasswordKeys([bytes(range(32))])
DIGEST_KEY = bytes(range(32, 64))  # keys the processed commands' body digests
SEAL_KEY = SEAL_KEYS.public_key


# --- unit of work --------------------------------------------------------------------------


@dataclass
class FakeDatabase:
    """The committed state, shared by every unit of work made from it."""

    trunks: dict[UUID, SipTrunk] = field(default_factory=dict)
    outbox: list[OutgoingMessage] = field(default_factory=list)
    processed: dict[tuple[str, str], ProcessedCommand] = field(default_factory=dict)
    commits: int = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class IntegrityError(Exception):
    """What a real database would raise on a primary-key clash or a missing row."""


class FakeTrunkRepository:
    def __init__(self, rows: dict[UUID, SipTrunk]) -> None:
        self._rows = rows

    async def get(self, trunk_id: UUID) -> SipTrunk | None:
        return self._rows.get(trunk_id)

    async def add(self, trunk: SipTrunk) -> None:
        if trunk.id in self._rows:
            raise IntegrityError(f"trunk {trunk.id} exists")
        self._rows[trunk.id] = trunk

    async def update(self, trunk: SipTrunk) -> None:
        if trunk.id not in self._rows:
            raise IntegrityError(f"trunk {trunk.id} does not exist")
        self._rows[trunk.id] = trunk

    async def delete(self, trunk: SipTrunk) -> None:
        self._rows.pop(trunk.id, None)

    async def list_all(self) -> list[SipTrunk]:
        return sorted(self._rows.values(), key=lambda t: (t.created_at, str(t.id)))


class FakeOutbox:
    def __init__(self, rows: list[OutgoingMessage]) -> None:
        self._rows = rows

    async def add(self, messages: Sequence[OutgoingMessage]) -> None:
        self._rows.extend(messages)


class FakeProcessedCommands:
    def __init__(self, rows: dict[tuple[str, str], ProcessedCommand]) -> None:
        self._rows = rows

    async def get(self, source: str, command_id: str) -> ProcessedCommand | None:
        return self._rows.get((source, command_id))

    async def add(self, record: ProcessedCommand) -> None:
        key = (record.source, record.command_id)
        if key in self._rows:
            raise IntegrityError(f"command {key} already processed")
        self._rows[key] = record


class FakeUnitOfWork:
    """Stages changes on copies of the committed state; `commit()` publishes them.

    Leaving the block without `commit()` discards everything staged (a rollback).
    """

    def __init__(self, db: FakeDatabase | None = None) -> None:
        self.db = db if db is not None else FakeDatabase()
        self.committed = 0
        self._trunks: dict[UUID, SipTrunk] | None = None
        self._outbox: list[OutgoingMessage] = []
        self._processed: dict[tuple[str, str], ProcessedCommand] = {}

    def _staged(self) -> dict[UUID, SipTrunk]:
        if self._trunks is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._trunks

    @property
    def trunks(self) -> FakeTrunkRepository:
        return FakeTrunkRepository(self._staged())

    @property
    def outbox(self) -> FakeOutbox:
        self._staged()
        return FakeOutbox(self._outbox)

    @property
    def processed(self) -> FakeProcessedCommands:
        self._staged()
        return FakeProcessedCommands(self._processed)

    async def __aenter__(self) -> Self:
        if self._trunks is not None:
            raise RuntimeError("unit of work entered twice")
        self._trunks = dict(self.db.trunks)
        self._outbox = list(self.db.outbox)
        self._processed = dict(self.db.processed)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._trunks = None  # rollback whatever was not committed
        self._outbox = []
        self._processed = {}

    async def prefetch(self, trunk_ids: Any, commands: Any) -> None:
        """Nothing to load ahead: everything is in memory."""

    async def commit(self) -> None:
        self.db.trunks = dict(self._staged())
        self.db.outbox = list(self._outbox)
        self.db.processed = dict(self._processed)
        self.db.commits += 1
        self.committed += 1


# --- provider ------------------------------------------------------------------------------


@dataclass
class FakeProvider:
    """Records every call as (operation, trunk); `fail_with` makes the next calls raise.

    `fail_with` may be a `Reason` (raises `Rejected(reason, ...)`) or any exception instance;
    `fail_times` limits how many calls fail (None: until reset); `fail_on` limits the failure
    to one operation ("create", "update" or "delete"; None: any).
    """

    calls: list[tuple[str, SipTrunk]] = field(default_factory=list)
    fail_with: Reason | BaseException | None = None
    fail_times: int | None = None
    fail_on: str | None = None
    created: int = 0

    def fail(
        self, error: Reason | BaseException, times: int | None = None, on: str | None = None
    ) -> None:
        self.fail_with, self.fail_times, self.fail_on = error, times, on

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def _call(self, op: str, trunk: SipTrunk) -> None:
        self.calls.append((op, trunk))
        if self.fail_with is None or self.fail_on not in (None, op):
            return
        error = self.fail_with
        if self.fail_times is not None:
            self.fail_times -= 1
            if self.fail_times <= 0:
                self.fail_with = self.fail_times = None
        if isinstance(error, Reason):
            raise Rejected(error, f"provider says no ({error.value})")
        raise error

    async def create(self, trunk: SipTrunk) -> str | None:
        self._call("create", trunk)
        self.created += 1
        return f"ST_{self.created}"

    async def update(self, before: SipTrunk, after: SipTrunk) -> str | None:
        self._call("update", after)
        return after.provider_id

    async def delete(self, trunk: SipTrunk) -> None:
        self._call("delete", trunk)


# --- clock, harness -----------------------------------------------------------------------


class TickingClock:
    """A deterministic clock: each call is one second after the previous."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class Harness:
    db: FakeDatabase = field(default_factory=FakeDatabase)
    provider: FakeProvider = field(default_factory=FakeProvider)
    clock: Callable[[], datetime] = field(default_factory=TickingClock)
    accept_plaintext_passwords: bool = False
    concurrency: int = 1  # the processor's: chains of a batch in flight at once

    @property
    def services(self) -> Services:
        return Services(
            provider=self.provider,
            messages=MessageFactory(TOPICS, SERVICE_SOURCE, clock=self.clock),
            clock=self.clock,
            passwords=SEAL_KEYS,
            accept_plaintext_passwords=self.accept_plaintext_passwords,
            digest_key=DIGEST_KEY,
        )

    @property
    def processor(self) -> CommandProcessor:
        return CommandProcessor(self.db.unit_of_work, self.services, concurrency=self.concurrency)

    async def run(self, *commands: InboundCommand) -> list[OutgoingMessage]:
        """Process the commands as one batch; return the outbox rows it added."""
        before = len(self.db.outbox)
        await self.processor.process(commands)
        return self.db.outbox[before:]

    def seed_system_trunk(self, trunk_id: UUID | None = None, **fields: Any) -> SipTrunk:
        trunk = upsert_system_trunk(
            None, trunk_id=trunk_id or uuid4(), fields=trunk_fields(**fields), now=START
        ).trunk
        self.db.trunks[trunk.id] = trunk
        return trunk


# --- command builders ----------------------------------------------------------------------


def command(
    ce_type: str,
    body: Any,
    *,
    source: str = "/test",
    id: str | None = None,  # the CloudEvents name
    correlation_id: str | None = None,
) -> InboundCommand:
    """Any body (valid or not) as read off Kafka: headers encoded, then parsed by the real
    `read_command`. `create`, `update` and `delete` below send well-formed commands."""
    ce = CloudEventHeaders.new(ce_type, source, correlation_id or f"corr-{uuid4()}", id=id)
    return read_command(json.dumps(body).encode(), ce.to_kafka())


def received(envelope: CommandEnvelope) -> InboundCommand:
    """A command built by the contract's `CommandEnvelope`, as the worker reads it."""
    return read_command(envelope.value(), envelope.kafka_headers())


def sealed(fields: Any) -> Any:
    """`fields` as a producer sends them, the password sealed; what no producer can seal (not
    an object, a password that is not a string) as it is, for the worker's own checks."""
    if not isinstance(fields, Mapping):
        return fields
    try:
        return seal_fields(SEAL_KEY, fields)
    except UnsealablePassword:
        return fields


def trunk_fields(**overrides: Any) -> dict[str, Any]:
    """A valid create body; keyword arguments replace fields (`_drop=[...]` removes some)."""
    drop: Iterable[str] = overrides.pop("_drop", ())
    fields: dict[str, Any] = {
        "name": "Main Office SIP Trunk",
        "gateways": [
            {"ipOrDomain": "sip-gateway.example.com", "port": 5060, "name": "Primary Gateway"}
        ],
        "authentication": {"username": "office_sip_user", "password": PASSWORD},
        "advanced": {},
    }
    fields.update(overrides)
    for key in drop:
        fields.pop(key, None)
    return fields


def addressed(
    trunk_id: UUID, tenant: str | None, source: str, id: str | None, correlation_id: str | None
) -> dict[str, Any]:
    """The envelope arguments every test command has; a new correlation id unless given."""
    return {
        "trunk_id": trunk_id,
        "tenant_id": tenant,
        "source": source,
        "command_id": id,
        "correlation_id": correlation_id or f"corr-{uuid4()}",
    }


def create_command(
    trunk_id: UUID,
    tenant: str | None = TENANT,
    *,
    source: str = "/test",
    id: str | None = None,  # the CloudEvents name
    correlation_id: str | None = None,
    **overrides: Any,
) -> CommandEnvelope:
    """A create of `trunk_fields(**overrides)`, built as every producer builds one."""
    return CommandEnvelope.create(
        sealed(trunk_fields(**overrides)), **addressed(trunk_id, tenant, source, id, correlation_id)
    )


def create_body(trunk_id: UUID, tenant: str | None = TENANT, **overrides: Any) -> dict[str, Any]:
    return create_command(trunk_id, tenant, **overrides).body


def create(trunk_id: UUID, tenant: str | None = TENANT, **kwargs: Any) -> InboundCommand:
    return received(create_command(trunk_id, tenant, **kwargs))


def update(
    trunk_id: UUID,
    changes: Any,
    tenant: str | None = TENANT,
    *,
    expected_version: int | None = None,
    source: str = "/test",
    id: str | None = None,
    correlation_id: str | None = None,
) -> InboundCommand:
    return received(
        CommandEnvelope.update(
            sealed(changes),
            expected_version=expected_version,
            **addressed(trunk_id, tenant, source, id, correlation_id),
        )
    )


def delete(
    trunk_id: UUID,
    tenant: str | None = TENANT,
    *,
    expected_version: int | None = None,
    source: str = "/test",
    id: str | None = None,
    correlation_id: str | None = None,
) -> InboundCommand:
    return received(
        CommandEnvelope.delete(
            expected_version=expected_version,
            **addressed(trunk_id, tenant, source, id, correlation_id),
        )
    )


# --- reading messages ----------------------------------------------------------------------


def payload(message: OutgoingMessage) -> dict[str, Any]:
    assert message.payload is not None, "a tombstone has no payload"
    data = json.loads(message.payload)
    assert isinstance(data, dict)
    return data


def ce_type(message: OutgoingMessage) -> str | None:
    return message.header("ce_type")
