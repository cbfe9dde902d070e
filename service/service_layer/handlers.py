"""The service layer: one handler per command, applied inside the caller's unit of work.

Each handler loads the trunk, asks the domain, keeps the provider in step, then writes the
trunk and hands back the outbox rows. Domain and provider refusals become a `TrunkRejected`
outcome, never an escaping exception; the processed-command row makes a redelivery answer the
same outcome.

A batch (`CommandProcessor`) is read first, then its commands run in independent chains
(`concurrency.py`: per trunk, in batch order), their provider calls overlapping up to the
processor's `concurrency`, and then all its writes go in one short write transaction, the outbox
rows in batch order: no database lock is held while the provider is called.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

import structlog
from sip_trunk_contracts import CreateSipTrunk, DeleteSipTrunk, UpdateSipTrunk

from service.domain import rules
from service.domain.errors import Reason, Rejected, ValidationFailed
from service.logs import get_logger
from service.service_layer.concurrency import chains, run_bounded
from service.service_layer.inbound import InboundCommand
from service.service_layer.messages import OutgoingMessage
from service.service_layer.outgoing import Cause, MessageFactory
from service.service_layer.passwords import open_passwords
from service.service_layer.ports import PasswordSeal, ProcessedCommand, TrunkProvider, UnitOfWork

__all__ = ["CommandProcessor", "MonotonicClock", "Services", "handle_command"]

log = get_logger(__name__)

_TICK = timedelta(microseconds=1)  # the finest step a timestamp keeps (storage, wire)


class MonotonicClock:
    """The wall clock in UTC, strictly increasing within this process.

    Creation timestamps are the list order (CONTRACT.md §4.1), so two creations must never share
    one, nor may a later one look older: when the wall clock repeats a value or steps back (NTP),
    the clock gives the last value plus 1 µs, running that little ahead until the wall clock has
    caught up. Calls are synchronous, so one instance serves a whole event loop.
    """

    def __init__(self, wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._wall = wall
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        now = self._wall().astimezone(UTC)
        if self._last is not None and now <= self._last:
            now = self._last + _TICK
        self._last = now
        return now


@dataclass(frozen=True, slots=True)
class Services:
    provider: TrunkProvider
    messages: MessageFactory
    clock: Callable[[], datetime] = field(default_factory=MonotonicClock)
    # Fault injection (off by default): the crash test exits the process here.
    after_provider_call: Callable[[], None] = lambda: None
    # Opens the commands' sealed passwords (CONTRACT §4.2); plaintext ones are refused unless
    # accepted.
    passwords: PasswordSeal = field(kw_only=True)
    accept_plaintext_passwords: bool = field(default=False, kw_only=True)
    # Keys the digest kept of each processed command's body (`_digest`).
    digest_key: bytes = field(kw_only=True, repr=False)


async def _create(
    cmd: InboundCommand, model: CreateSipTrunk, uow: UnitOfWork, svc: Services, cause: Cause
) -> list[OutgoingMessage]:
    change = rules.create_trunk(
        await uow.trunks.get(cmd.trunk_id),
        trunk_id=cmd.trunk_id,
        tenant_id=model.tenantId,
        fields=model.body(),
        now=svc.clock(),
    )
    provider_id = await svc.provider.create(change.trunk)
    svc.after_provider_call()
    trunk = rules.with_provider_id(change.trunk, provider_id)
    await uow.trunks.add(trunk)
    return svc.messages.created(trunk, cause)


async def _update(
    cmd: InboundCommand, model: UpdateSipTrunk, uow: UnitOfWork, svc: Services, cause: Cause
) -> list[OutgoingMessage]:
    existing = await uow.trunks.get(cmd.trunk_id)
    change = rules.update_trunk(
        existing,
        tenant_id=model.tenantId,
        changes=model.changes,
        expected_version=model.expectedVersion,
        now=svc.clock(),
    )
    if not change.changed:  # nothing to store, nobody to call; the trunk as it is
        return svc.messages.updated(change.trunk, (), cause)
    assert existing is not None  # update_trunk refuses a missing trunk
    provider_id = await svc.provider.update(existing, change.trunk)
    svc.after_provider_call()
    trunk = rules.with_provider_id(change.trunk, provider_id)
    await uow.trunks.update(trunk)
    return svc.messages.updated(trunk, change.changed_fields, cause)


async def _delete(
    cmd: InboundCommand, model: DeleteSipTrunk, uow: UnitOfWork, svc: Services, cause: Cause
) -> list[OutgoingMessage]:
    existing = await uow.trunks.get(cmd.trunk_id)
    deleted = rules.delete_trunk(
        existing, tenant_id=model.tenantId, expected_version=model.expectedVersion
    )
    await svc.provider.delete(deleted)
    svc.after_provider_call()
    await uow.trunks.delete(deleted)
    return svc.messages.deleted(deleted, cause)


async def _apply(
    cmd: InboundCommand, uow: UnitOfWork, svc: Services, cause: Cause
) -> list[OutgoingMessage]:
    """The handler of the command's model type; a command with an invalid envelope is refused."""
    model = cmd.model
    if cmd.errors or model is None:
        raise ValidationFailed(cmd.errors)
    # The model's type is the command's ce_type (the contract's registry parsed it): one
    # handler per type, each given its own model, and mypy checks every type has one.
    match model:
        case CreateSipTrunk():
            return await _create(cmd, model, uow, svc, cause)
        case UpdateSipTrunk():
            return await _update(cmd, model, uow, svc, cause)
        case DeleteSipTrunk():
            return await _delete(cmd, model, uow, svc, cause)
        case _:
            assert_never(model)


async def handle_command(
    cmd: InboundCommand, uow: UnitOfWork, svc: Services
) -> list[OutgoingMessage]:
    """Apply one command in `uow` (not committed here); return its outbox rows, the outcome
    event first (the caller adds them to the outbox, in its commands' order)."""
    # Before the duplicate check: a retry is compared by its opened body (see `passwords`).
    cmd = open_passwords(cmd, svc.passwords, accept_plaintext=svc.accept_plaintext_passwords)
    cause = Cause(cmd.ce.correlation_id, cmd.ce.id, cmd.ce.type)
    seen = await uow.processed.get(cmd.ce.source, cmd.ce.id)
    if seen is not None:
        outcome = _repeat(cmd, seen, svc, cause)
        log.info("command.duplicate", outcome=outcome.header("ce_type"))
        return [outcome]
    try:
        messages = await _apply(cmd, uow, svc, cause)
    except Rejected as refusal:
        messages = [svc.messages.rejected(cmd.trunk_id, cmd.tenant_id, refusal, cause)]
        log.info("command.rejected", reason=refusal.reason.value, detail=refusal.detail)
    else:
        log.info("command.applied", outcome=messages[0].header("ce_type"))
    await uow.processed.add(
        ProcessedCommand(
            source=cmd.ce.source,
            command_id=cmd.ce.id,
            command_type=cmd.ce.type,
            body_sha256=_digest(cmd.body_sha256, svc),
            outcome=messages[0],
            processed_at=svc.clock(),
        )
    )
    return messages


def _digest(body_sha256: str, svc: Services) -> str:
    """What is kept of a command's body (its bare SHA-256 given) to tell a redelivery from
    another command under its id. Keyed: the body holds the opened password, and a bare hash of
    it would let whoever reads the database (or a backup) test guesses of a weak password."""
    return hmac.new(svc.digest_key, body_sha256.encode(), hashlib.sha256).hexdigest()


def _repeat(
    cmd: InboundCommand, seen: ProcessedCommand, svc: Services, cause: Cause
) -> OutgoingMessage:
    """A redelivery gets the original outcome (same `ce_id`); a reused id, another body: refused."""
    # Rows written before the digest was keyed hold the bare SHA-256 (gone after
    # PROCESSED_RETENTION_DAYS): a redelivery of such a command is still recognised.
    bare = cmd.body_sha256
    same_body = seen.body_sha256 in (_digest(bare, svc), bare)
    if same_body and seen.command_type == cmd.ce.type:
        # Same event (same ce_id, body), addressed to whoever is waiting on this delivery.
        return seen.outcome.with_header("ce_correlationid", cause.correlation_id)
    refusal = Rejected(
        Reason.IDEMPOTENCY_KEY_REUSED,
        f"command id {cmd.ce.id!r} from {cmd.ce.source!r} was already used for another command",
    )
    return svc.messages.rejected(cmd.trunk_id, cmd.tenant_id, refusal, cause)


class CommandProcessor:
    """Applies a batch of commands in one unit of work: its reads, then its provider calls,
    `concurrency` chains at a time, then one commit (one fsync) for all its writes."""

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], services: Services, *, concurrency: int = 1
    ) -> None:
        self._uow_factory = uow_factory
        self._services = services
        self._concurrency = concurrency

    async def process(self, commands: Sequence[InboundCommand]) -> None:
        async with self._uow_factory() as uow:
            await uow.prefetch(
                {cmd.trunk_id for cmd in commands}, {(cmd.ce.source, cmd.ce.id) for cmd in commands}
            )
            rows: list[list[OutgoingMessage]] = [[] for _ in commands]

            async def apply(chain: list[int]) -> None:
                # Each command's log context replaces the previous one's; the first binding's
                # tokens restore what was bound before (a `with` per command cost 5 us). A
                # chain run as a task binds in the task's own copy of the context.
                before: Mapping[str, contextvars.Token[Any]] | None = None
                try:
                    for i in chain:
                        cmd = commands[i]
                        bound = structlog.contextvars.bind_contextvars(
                            correlation_id=cmd.ce.correlation_id,
                            command_id=cmd.ce.id,
                            command_type=cmd.ce.type,
                            trunk_id=str(cmd.trunk_id),
                        )
                        before = before or bound
                        rows[i] = await handle_command(cmd, uow, self._services)
                finally:
                    if before is not None:
                        structlog.contextvars.reset_contextvars(**before)

            # Concurrency 1 (no provider to wait for): the batch is one chain, in this task.
            batch = chains(commands) if self._concurrency > 1 else [list(range(len(commands)))]
            await run_bounded(batch, apply, self._concurrency)
            # The outbox in batch order, whatever order the chains ended in.
            await uow.outbox.add(list(itertools.chain.from_iterable(rows)))
            await uow.commit()
