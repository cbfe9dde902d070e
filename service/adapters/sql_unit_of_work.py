"""The SQL unit of work: reads in short read transactions, every write in one at the commit.

Built for batches: `prefetch` loads a batch's trunks and processed-command rows in two queries
of one read transaction (on SQLite a deferred one: no write lock), reads are then served from
this unit's own view, and every write waits for the commit, one short write transaction: the
trunks' inserts, updates and deletes in their order, one statement per run of the same kind (an
update's or delete's version guard is checked on the run's row count where the driver reports
it, row by row elsewhere), then the outbox and processed-command rows in one multi-row insert
each. So whatever the caller does between its reads and its commit (the provider calls) holds
no lock: a row changed meanwhile fails the commit's version guard (`ConcurrentModification`),
a trunk or processed command inserted meanwhile its primary key (`IntegrityError`). A password
is encrypted only when it changed: an update that keeps it keeps its stored token.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from service.adapters.database import READ_ONLY
from service.adapters.encryption import PasswordCipher
from service.adapters.schema import outbox, processed_commands, sip_trunks
from service.domain.document import gateways_from_document, gateways_to_document
from service.domain.model import Credentials, SipTrunk
from service.service_layer.messages import OutgoingMessage
from service.service_layer.ports import ConcurrentModification, ProcessedCommand

__all__ = ["ConcurrentModification", "SqlUnitOfWork", "utc"]

# Statements built once: a per-row `.values(...)` rebuilds SQLAlchemy's cache key every call.
_INSERT_TRUNK = insert(sip_trunks)
_UPDATE_TRUNK = update(sip_trunks).where(
    # Optimistic guard: the row must still hold a version older than the one being written.
    sip_trunks.c.id == bindparam("b_id"),
    sip_trunks.c.version < bindparam("b_version"),
)
_DELETE_TRUNK = delete(sip_trunks).where(
    sip_trunks.c.id == bindparam("b_id"), sip_trunks.c.version < bindparam("b_version")
)

# Opens a read transaction (see `SqlUnitOfWork._reading`).
Reading = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_row(rowcount: int, trunk_id: object) -> None:
    if rowcount != 1:
        raise ConcurrentModification(f"trunk {trunk_id} changed concurrently")


class SqlTrunkRepository:
    def __init__(self, reading: Reading, cipher: PasswordCipher) -> None:
        self._reading = reading
        self._cipher = cipher
        self._known: dict[UUID, SipTrunk | None] = {}  # this transaction's view, by id
        # Pending writes in order: runs of one statement, each run executed as one.
        self._writes: list[tuple[Executable, list[dict[str, Any]]]] = []
        # Each trunk's password as last read or written here, with its token.
        self._tokens: dict[UUID, tuple[str, str]] = {}

    async def load(self, conn: AsyncConnection, trunk_ids: Collection[UUID]) -> None:
        wanted = [i for i in trunk_ids if i not in self._known]
        if not wanted:
            return
        rows = await conn.execute(
            select(sip_trunks).where(sip_trunks.c.id.in_([str(i) for i in wanted]))
        )
        self._known.update(dict.fromkeys(wanted))
        for row in rows.mappings():
            self._known[UUID(row["id"])] = self._to_domain(row)

    async def get(self, trunk_id: UUID) -> SipTrunk | None:
        if trunk_id not in self._known:
            async with self._reading() as conn:
                await self.load(conn, [trunk_id])
        return self._known[trunk_id]

    async def list_all(self) -> list[SipTrunk]:
        """The committed trunks, oldest first."""
        async with self._reading() as conn:
            rows = await conn.execute(
                select(sip_trunks).order_by(sip_trunks.c.created_at, sip_trunks.c.id)
            )
            return [self._to_domain(row) for row in rows.mappings()]

    async def add(self, trunk: SipTrunk) -> None:
        self._write(_INSERT_TRUNK, self._to_row(trunk))
        self._known[trunk.id] = trunk

    async def update(self, trunk: SipTrunk) -> None:
        self._write(
            _UPDATE_TRUNK, self._to_row(trunk) | {"b_id": str(trunk.id), "b_version": trunk.version}
        )
        self._known[trunk.id] = trunk

    async def delete(self, trunk: SipTrunk) -> None:
        self._write(_DELETE_TRUNK, {"b_id": str(trunk.id), "b_version": trunk.version})
        self._known[trunk.id] = None

    def _write(self, statement: Executable, row: dict[str, Any]) -> None:
        if self._writes and self._writes[-1][0] is statement:
            self._writes[-1][1].append(row)
        else:
            self._writes.append((statement, [row]))

    async def flush(self, conn: AsyncConnection) -> None:
        """Execute the pending writes in order; ConcurrentModification when a version guard
        finds a row changed (or gone) since it was read."""
        writes, self._writes = self._writes, []
        for statement, rows in writes:
            if statement is _INSERT_TRUNK:
                await conn.execute(statement, rows)
            elif conn.dialect.supports_sane_multi_rowcount:
                # Each row's guard matches at most one row: all matched when the sum says so.
                result = await conn.execute(statement, rows)
                if result.rowcount != len(rows):
                    raise ConcurrentModification(
                        f"one of trunks {sorted({r['b_id'] for r in rows})} changed concurrently"
                    )
            else:
                for row in rows:
                    _one_row((await conn.execute(statement, row)).rowcount, row["b_id"])

    def _to_row(self, trunk: SipTrunk) -> dict[str, Any]:
        auth = trunk.authentication
        return {
            "id": str(trunk.id),
            "tenant_id": trunk.tenant_id,
            "name": trunk.name,
            "gateways": gateways_to_document(trunk.gateways),
            "username": auth.username if auth else None,
            "password_encrypted": self._token(trunk.id, auth.password) if auth else None,
            "advanced": dict(trunk.advanced),
            "is_system": trunk.is_system,
            "provider_id": trunk.provider_id,
            "created_at": trunk.created_at,
            "updated_at": trunk.updated_at,
            "version": trunk.version,
        }

    def _token(self, trunk_id: UUID, password: str) -> str:
        """The stored token of `password`: the trunk's own when it is unchanged, else made."""
        known = self._tokens.get(trunk_id)
        if known is not None and known[0] == password:
            return known[1]
        token = self._cipher.encrypt(password)
        self._tokens[trunk_id] = (password, token)
        return token

    def _to_domain(self, row: RowMapping) -> SipTrunk:
        trunk_id = UUID(row["id"])
        auth = None
        if row["username"] is not None:
            token = row["password_encrypted"]
            auth = Credentials(row["username"], self._cipher.decrypt(token))
            self._tokens[trunk_id] = (auth.password, token)
        return SipTrunk(
            id=trunk_id,
            tenant_id=row["tenant_id"],
            name=row["name"],
            gateways=gateways_from_document(row["gateways"]),
            authentication=auth,
            advanced=row["advanced"],
            is_system=row["is_system"],
            provider_id=row["provider_id"],
            created_at=utc(row["created_at"]),
            updated_at=utc(row["updated_at"]),
            version=row["version"],
        )


class SqlOutbox:
    """Rows are written in one multi-row insert at commit, in the order they were added."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    async def add(self, messages: Sequence[OutgoingMessage]) -> None:
        now = datetime.now(UTC)
        self._rows += [
            {
                "topic": m.topic,
                "key": m.key,
                "headers": m.headers,  # as they are: JSON keeps the pairs as 2-item arrays
                "payload": m.payload,
                "created_at": now,
            }
            for m in messages
        ]

    async def flush(self, conn: AsyncConnection) -> None:
        if self._rows:
            await conn.execute(insert(outbox), self._rows)
            self._rows = []


class SqlProcessedCommands:
    def __init__(self, reading: Reading) -> None:
        self._reading = reading
        self._known: dict[tuple[str, str], ProcessedCommand | None] = {}
        self._rows: list[dict[str, Any]] = []

    async def load(self, conn: AsyncConnection, keys: Collection[tuple[str, str]]) -> None:
        wanted = [k for k in keys if k not in self._known]
        if not wanted:
            return
        table = processed_commands
        by_source: dict[str, list[str]] = {}
        for source, command_id in wanted:
            by_source.setdefault(source, []).append(command_id)
        # Per source, not `(source, command_id) IN (...)`: SQLite answers a row-value IN by
        # scanning the whole table (every batch would read every command ever processed),
        # while `source = ? AND command_id IN (...)` searches the primary key, on both databases.
        rows = await conn.execute(
            select(table).where(
                or_(
                    *(
                        and_(table.c.source == source, table.c.command_id.in_(ids))
                        for source, ids in by_source.items()
                    )
                )
            )
        )
        self._known.update(dict.fromkeys(wanted))
        for row in rows.mappings():
            self._known[(row["source"], row["command_id"])] = ProcessedCommand(
                source=row["source"],
                command_id=row["command_id"],
                command_type=row["command_type"],
                body_sha256=row["body_sha256"],
                outcome=OutgoingMessage.from_json(row["outcome"]),
                processed_at=utc(row["processed_at"]),
            )

    async def get(self, source: str, command_id: str) -> ProcessedCommand | None:
        key = (source, command_id)
        if key not in self._known:
            async with self._reading() as conn:
                await self.load(conn, [key])
        return self._known[key]

    async def add(self, record: ProcessedCommand) -> None:
        self._known[(record.source, record.command_id)] = record
        self._rows.append(
            {
                "source": record.source,
                "command_id": record.command_id,
                "command_type": record.command_type,
                "body_sha256": record.body_sha256,
                "outcome": record.outcome.to_json(),
                "processed_at": record.processed_at,
            }
        )

    async def flush(self, conn: AsyncConnection) -> None:
        if self._rows:
            await conn.execute(insert(processed_commands), self._rows)
            self._rows = []


class SqlUnitOfWork:
    """`async with uow:` a unit whose reads each run in a short read transaction and whose
    writes wait for `commit()`, one write transaction; leaving without it writes nothing."""

    trunks: SqlTrunkRepository
    outbox: SqlOutbox
    processed: SqlProcessedCommands

    def __init__(self, engine: AsyncEngine, cipher: PasswordCipher) -> None:
        self._engine = engine
        self._reader = _read_only(engine)
        self._cipher = cipher

    async def __aenter__(self) -> Self:
        self.trunks = SqlTrunkRepository(self._reading, self._cipher)
        self.outbox = SqlOutbox()
        self.processed = SqlProcessedCommands(self._reading)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Nothing to roll back: no transaction stays open between calls."""

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        # On SQLite a deferred transaction: it takes no write lock, so a writer (the relay,
        # reconcile) is never held by this unit's reads, nor by what the caller does next.
        async with self._reader.connect() as conn, conn.begin():
            yield conn

    async def prefetch(
        self, trunk_ids: Collection[UUID], commands: Collection[tuple[str, str]]
    ) -> None:
        async with self._reading() as conn:
            await self.trunks.load(conn, trunk_ids)
            await self.processed.load(conn, commands)

    async def commit(self) -> None:
        async with self._engine.begin() as conn:  # the write lock, for the writes only
            await self.trunks.flush(conn)
            await self.outbox.flush(conn)
            await self.processed.flush(conn)


@functools.lru_cache(maxsize=8)
def _read_only(engine: AsyncEngine) -> AsyncEngine:
    """The engine's read-only view (see database.READ_ONLY), made once, not per batch."""
    return engine.execution_options(**READ_ONLY)
