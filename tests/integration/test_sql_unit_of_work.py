"""The SQL unit of work on every backend (SQLite and PostgreSQL): one suite, same assertions."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from sip_trunk_contracts import CloudEventHeaders, CreateSipTrunk, Topics, UpdateSipTrunk
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.encryption import load_cipher
from service.adapters.password_seal import password_keys
from service.adapters.provider_none import NoProvider
from service.adapters.schema import outbox, sip_trunks
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.domain.model import Credentials, Gateway, SipTrunk
from service.service_layer.handlers import CommandProcessor, Services
from service.service_layer.inbound import read_command
from service.service_layer.messages import OutgoingMessage
from service.service_layer.outgoing import MessageFactory
from service.service_layer.ports import ConcurrentModification, ProcessedCommand

PASSWORD = "plain-Secret-42"


def a_trunk(**overrides: object) -> SipTrunk:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    values: dict[str, object] = {
        "id": uuid4(),
        "tenant_id": "acme",
        "name": "Main",
        "gateways": (Gateway("sip.example.com", 5060, "Primary"),),
        "authentication": Credentials("office", PASSWORD),
        "advanced": {"transport": "tls", "numbers": ["+15550100"]},
        "is_system": False,
        "provider_id": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    values.update(overrides)
    return SipTrunk(**values)  # type: ignore[arg-type]


def uow(engine: AsyncEngine, tmp_path: Path) -> SqlUnitOfWork:
    return SqlUnitOfWork(engine, load_cipher(None, tmp_path))


async def test_trunk_round_trip_update_delete(engine: AsyncEngine, tmp_path: Path) -> None:
    trunk = a_trunk()
    async with uow(engine, tmp_path) as u:
        await u.trunks.add(trunk)
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == trunk
        changed = a_trunk(id=trunk.id, name="Renamed", authentication=None, version=2)
        await u.trunks.update(changed)
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == changed
        await u.trunks.delete(a_trunk(id=trunk.id, version=3))
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) is None


async def test_writes_of_one_transaction_keep_their_order(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    trunk, other = a_trunk(), a_trunk()
    async with uow(engine, tmp_path) as u:  # created, changed twice, deleted, created again
        await u.trunks.add(trunk)
        await u.trunks.add(other)
        await u.trunks.update(a_trunk(id=trunk.id, name="Two", version=2))
        await u.trunks.update(a_trunk(id=trunk.id, name="Three", version=3))
        await u.trunks.delete(a_trunk(id=trunk.id, version=4))
        await u.trunks.add(a_trunk(id=trunk.id, name="Again"))
        await u.trunks.update(a_trunk(id=other.id, name="Other", version=2))
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == a_trunk(id=trunk.id, name="Again")
        assert await u.trunks.get(other.id) == a_trunk(id=other.id, name="Other", version=2)


async def test_a_write_over_a_concurrent_change_is_refused_whole(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    trunks = [a_trunk(), a_trunk()]
    async with uow(engine, tmp_path) as u:
        for trunk in trunks:
            await u.trunks.add(trunk)
        await u.commit()
    async with uow(engine, tmp_path) as u:  # another writer got there first
        await u.trunks.update(a_trunk(id=trunks[1].id, version=2))
        await u.commit()
    for stale in (
        lambda u: u.trunks.update(a_trunk(id=trunks[1].id, name="Late", version=2)),
        lambda u: u.trunks.delete(a_trunk(id=trunks[1].id, version=2)),  # changed since read
        lambda u: u.trunks.delete(a_trunk(version=2)),  # gone (or never there)
    ):
        async with uow(engine, tmp_path) as u:
            await u.trunks.update(a_trunk(id=trunks[0].id, name="Fine", version=2))
            await stale(u)
            with pytest.raises(ConcurrentModification):
                await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunks[0].id) == trunks[0]  # nothing of it was written
        assert await u.trunks.get(trunks[1].id) == a_trunk(id=trunks[1].id, version=2)


async def test_between_its_reads_and_its_commit_a_unit_holds_no_lock(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """What a batch does between them (its provider calls) lets every other writer commit."""
    trunk = a_trunk()
    async with uow(engine, tmp_path) as u:
        await u.trunks.add(trunk)
        await u.commit()
    async with uow(engine, tmp_path) as batch:
        await batch.prefetch([trunk.id], [("/gateway", "c-1")])
        assert await batch.trunks.get(trunk.id) == trunk
        await batch.trunks.update(a_trunk(id=trunk.id, name="Batch", version=2))
        async with uow(engine, tmp_path) as other:  # at once: no busy_timeout waited out
            await other.trunks.update(a_trunk(id=trunk.id, name="Other", version=2))
            await asyncio.wait_for(other.commit(), 2)
        with pytest.raises(ConcurrentModification):  # the guard sees the row changed
            await batch.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == a_trunk(id=trunk.id, name="Other", version=2)


async def test_a_password_is_encrypted_again_only_when_it_changes(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    trunk = a_trunk()

    async def token() -> str:
        async with engine.connect() as conn:
            query = select(sip_trunks.c.password_encrypted).where(sip_trunks.c.id == str(trunk.id))
            return str((await conn.execute(query)).scalar_one())

    async with uow(engine, tmp_path) as u:
        await u.trunks.add(trunk)
        await u.commit()
    first = await token()
    async with uow(engine, tmp_path) as u:
        kept = a_trunk(id=trunk.id, name="Renamed", version=2)
        assert await u.trunks.get(trunk.id) == trunk
        await u.trunks.update(kept)
        await u.commit()
    assert await token() == first
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == kept
        changed = a_trunk(
            id=trunk.id, authentication=Credentials("office", "n3w-Secret"), version=3
        )
        await u.trunks.update(changed)
        await u.commit()
    assert await token() != first
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) == changed


async def test_leaving_without_commit_rolls_back(engine: AsyncEngine, tmp_path: Path) -> None:
    trunk = a_trunk()
    async with uow(engine, tmp_path) as u:
        await u.trunks.add(trunk)
        assert await u.trunks.get(trunk.id) == trunk  # a transaction reads its own writes
    async with uow(engine, tmp_path) as u:
        assert await u.trunks.get(trunk.id) is None


async def test_password_is_encrypted_at_rest(engine: AsyncEngine, tmp_path: Path) -> None:
    trunk = a_trunk()
    async with uow(engine, tmp_path) as u:
        await u.trunks.add(trunk)
        await u.commit()
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                select(sip_trunks.c.password_encrypted).where(sip_trunks.c.id == str(trunk.id))
            )
        ).scalar_one()
        dump = str((await conn.execute(select(sip_trunks))).all())
    assert PASSWORD not in stored
    assert PASSWORD not in dump
    if engine.dialect.name == "sqlite":
        assert engine.url.database  # the database file and its write-ahead log: every byte
        files = list(Path(engine.url.database).parent.glob("test.sqlite3*"))
        assert files
        for file in files:
            assert PASSWORD.encode() not in file.read_bytes(), file


async def test_processed_commands_keep_the_outcome(engine: AsyncEngine, tmp_path: Path) -> None:
    outcome = OutgoingMessage("t.events", "k", (("ce_id", "e-1"), ("ce_type", "x")), b'{"a":1}')
    record = ProcessedCommand(
        source="/gateway",
        command_id="c-1",
        command_type="sip_trunks.CreateSipTrunk.v1",
        body_sha256="0" * 64,
        outcome=outcome,
        processed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    async with uow(engine, tmp_path) as u:
        await u.processed.add(record)
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert await u.processed.get("/gateway", "c-1") == record
        assert await u.processed.get("/other", "c-1") is None


async def test_a_batch_finds_its_processed_commands_by_source_and_id(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    outcome = OutgoingMessage("t.events", "k", (("ce_id", "e-1"),), b"{}")
    stored = [("/gateway", "c-1"), ("/gateway", "c-2"), ("/cli", "c-1")]
    async with uow(engine, tmp_path) as u:
        for source, command_id in stored:
            await u.processed.add(
                ProcessedCommand(source, command_id, "t", "0" * 64, outcome, datetime.now(UTC))
            )
        await u.commit()
    asked = [*stored, ("/cli", "c-2"), ("/other", "c-1")]
    async with uow(engine, tmp_path) as u:
        await u.prefetch([], asked)
        found = {key for key in asked if await u.processed.get(*key) is not None}
    assert found == set(stored)


async def test_list_all_oldest_first(engine: AsyncEngine, tmp_path: Path) -> None:
    older = a_trunk(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    newer = a_trunk()
    async with uow(engine, tmp_path) as u:
        await u.trunks.add(newer)
        await u.trunks.add(older)
        await u.commit()
    async with uow(engine, tmp_path) as u:
        assert [t.id for t in await u.trunks.list_all()] == [older.id, newer.id]


async def test_one_batch_sees_its_own_writes(engine: AsyncEngine, tmp_path: Path) -> None:
    """Prefetched reads and buffered writes: later commands of a batch see earlier ones."""

    def command(ce_type: str, body: dict[str, object], command_id: str) -> object:
        ce = CloudEventHeaders.new(ce_type, "/test", "corr")
        headers = [(k, command_id.encode() if k == "ce_id" else v) for k, v in ce.to_kafka()]
        return read_command(json.dumps(body).encode(), headers)

    trunk_id = str(uuid4())
    create = {
        "trunkId": trunk_id,
        "tenantId": "acme",
        "name": "A",
        "gateways": [{"ipOrDomain": "sip.example.com", "name": "g"}],
    }
    update = {"trunkId": trunk_id, "tenantId": "acme", "changes": {"name": "B"}}
    batch = [
        command(CreateSipTrunk.CE_TYPE, create, "c1"),
        command(UpdateSipTrunk.CE_TYPE, update, "c2"),
        command(CreateSipTrunk.CE_TYPE, create, "c1"),  # a redelivery inside the batch
        command(UpdateSipTrunk.CE_TYPE, {**update, "changes": {"name": "C"}}, "c3"),
    ]
    cipher = load_cipher(None, tmp_path)
    services = Services(
        NoProvider(),
        MessageFactory(Topics.with_prefix("t."), "/svc"),
        passwords=password_keys(Settings(data_dir=tmp_path)),
        digest_key=cipher.digest_key,
    )
    await CommandProcessor(lambda: SqlUnitOfWork(engine, cipher), services).process(batch)  # type: ignore[arg-type]
    async with uow(engine, tmp_path) as u:
        trunk = await u.trunks.get(UUID(trunk_id))
        assert trunk is not None
        assert (trunk.name, trunk.version) == ("C", 3)
        assert await u.processed.get("/test", "c1") is not None
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
    assert count == 7  # 3 outcomes + 3 snapshots + the repeated outcome


async def test_timestamps_keep_their_microseconds(engine: AsyncEngine, tmp_path: Path) -> None:
    """Creation order within one second (CONTRACT.md §4.1) survives storage, UTC throughout."""
    second = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    trunks = [
        a_trunk(
            created_at=second.replace(microsecond=micro),
            updated_at=second.replace(microsecond=micro + 1),
        )
        for micro in (999_998, 1, 500_000, 0)
    ]
    async with uow(engine, tmp_path) as u:
        for trunk in trunks:
            await u.trunks.add(trunk)
        await u.commit()
    async with uow(engine, tmp_path) as u:
        stored = await u.trunks.list_all()
    assert stored == sorted(trunks, key=lambda t: t.created_at)
    assert all(t.created_at.tzinfo == UTC for t in stored)
