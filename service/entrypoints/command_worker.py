"""The worker's batch policy: every polled record gets exactly one answer, whatever it holds.

A batch's recognisable commands are applied in one transaction (their outcomes go to the
outbox); what cannot be read goes to the dead-letter topic. When the transaction fails, the
commands are applied one by one so that only a culprit is dead-lettered:

- if the database cannot work now (unreachable, read-only, out of space, deadlocked: one list,
  `adapters.database.cannot_work_now`) or does not answer, the whole batch is handed back to be
  retried later: nothing lost, nothing skipped, nothing dead-lettered for an outage;
- a race lost to another transaction is retried with backoff a few times;
- any other error is the command's own (a bug, data the database refuses): retrying cannot
  help, so it is dead-lettered at once and the worker goes on. No input can stall the worker.

A record is dead-lettered once: a batch handed back after some of its records went to the DLT
skips them when it comes again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeAlias

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from sqlalchemy.exc import IntegrityError

from service.adapters.command_signatures import ProducerTrust
from service.adapters.database import cannot_work_now
from service.logs import get_logger
from service.service_layer.handlers import CommandProcessor
from service.service_layer.inbound import InboundCommand, Unrecognisable, read_command
from service.service_layer.ports import ConcurrentModification

__all__ = ["CommandWorker", "DeadLetterSink", "Record", "where"]

log = get_logger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
_ATTEMPTS = 4  # tries of a command on its own through lost races, then it is poison
_BACKOFF_S = 0.2
# Another transaction won a race on the same row (a rebalance's old owner, reconcile): the
# command re-reads and tries again.
_RACES = (ConcurrentModification, IntegrityError)


class DeadLetterSink(Protocol):
    async def send(self, record: Record, why: str) -> None: ...


class CommandWorker:
    def __init__(
        self,
        processor: CommandProcessor,
        dead_letters: DeadLetterSink,
        database_ok: Callable[[], Awaitable[bool]],
        *,
        trust: ProducerTrust,
    ) -> None:
        self._processor = processor
        self._trust = trust
        self._dead_letters = dead_letters
        self._database_ok = database_ok
        # Records of the batch in hand already sent to the DLT (topic, partition, offset).
        self._dead: set[tuple[str, int, int]] = set()

    async def handle_batch(self, records: Sequence[Record]) -> bool:
        """Process a polled batch; True when its offsets may be committed, False to retry it."""
        commands: list[tuple[Record, InboundCommand]] = []
        unreadable: list[tuple[Record, str]] = []
        for record in records:
            if _key(record) in self._dead:
                continue  # answered by the DLT before this batch was handed back
            command, why = self._read(record)
            if command is None:
                unreadable.append((record, why))
            else:
                commands.append((record, command))
        if commands and not await self._apply(commands):
            return False
        # Dead-letter after the commit: a batch retried for the database's sake must not send
        # its unreadable records to the DLT again.
        for record, why in unreadable:
            log.warning("command.dead_lettered", reason=why, **where(record))
            if not await self._dead_letter(record, why):
                return False
        self._dead.clear()  # the batch is done: its offsets are about to be committed
        return True

    def _read(self, record: Record) -> tuple[InboundCommand | None, str]:
        """The record's command, or None and why it may not be answered; never raises."""
        try:
            command = read_command(record.value, list(record.headers))
            refused = self._trust.refusal(command, record.key, record.value, record.headers)
        except Unrecognisable as exc:
            return None, str(exc)
        except Exception as exc:  # a bug in reading: the record still gets its answer, the DLT
            log.exception("command.unreadable", **where(record))
            return None, f"could not be read: {_describe(exc)}"
        if refused is not None:  # not remembered as processed: a forgery occupies no command id
            return None, f"refused: {refused}"
        return command, ""

    async def _dead_letter(self, record: Record, why: str) -> bool:
        try:
            await self._dead_letters.send(record, why)
            self._dead.add(_key(record))
            return True
        except KafkaError as exc:  # the broker is away: the batch is retried, nothing skipped
            log.warning("dead_letter.failed", error=type(exc).__name__, **where(record))
            return False

    async def _apply(self, commands: list[tuple[Record, InboundCommand]]) -> bool:
        try:
            await self._processor.process([cmd for _, cmd in commands])
            return True
        except Exception as exc:  # isolate the culprit below
            log.warning("batch.failed", size=len(commands), error=type(exc).__name__)
        for record, cmd in commands:
            if not await self._apply_alone(record, cmd):
                return False
        return True

    async def _apply_alone(self, record: Record, cmd: InboundCommand) -> bool:
        error = ""
        for attempt in range(_ATTEMPTS):
            if attempt:
                await asyncio.sleep(_BACKOFF_S * 2**attempt)
            try:
                await self._processor.process([cmd])
                return True
            except Exception as exc:  # judged below
                error = _describe(exc)
                if cannot_work_now(exc) or not await self._database_ok():
                    return False  # not this command's fault: retry the batch later
                if not isinstance(exc, _RACES):
                    break  # the command's own fault: the same input fails the same way again
        log.error("command.dead_lettered", reason=error, command_id=cmd.ce.id, **where(record))
        return await self._dead_letter(record, error)


def _key(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def where(record: Record) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
