"""Client side of the command topic: publish a command, await its outcome by correlation id.

Used by the REST gateway and the CLI. Every instance reads all partitions of the events topic
from the end, without a consumer group, and resolves the requests waiting for the command an
event answers (its `ce_causationid`), so any number of instances work side by side, and two
requests carrying one command (retries with one Idempotency-Key) both get its outcome.
Every event also goes to `on_event` first (the gateway's read model), so a caller that gets
an outcome reads it back. A waiting request gets the event decoded with its contract model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sip_trunk_contracts import (
    OUTCOME_TYPES,
    CloudEventHeaders,
    CommandEnvelope,
    InvalidHeaders,
    OutcomeEvent,
)

from service.adapters import kafka_clients
from service.adapters.command_signatures import CommandSigner
from service.adapters.unreadable_records import UNREADABLE_FETCH, skip_unreadable
from service.config import Settings
from service.logs import get_logger

__all__ = ["BrokerUnavailable", "CommandBus", "Outcome"]

log = get_logger(__name__)

# (ce_type, body, ce_time): the time tells the read model when a delete happened.
EventHook = Callable[[str, dict[str, Any], datetime], None]


class BrokerUnavailable(Exception):
    """The command could not be handed to Kafka in time: it was not sent."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The event that answers a command, decoded with its contract model."""

    headers: CloudEventHeaders
    event: OutcomeEvent

    @classmethod
    def decode(cls, headers: CloudEventHeaders, body: Any) -> Outcome:
        """From a JSON-decoded body. Raises KeyError for a type that answers no command and
        `pydantic.ValidationError` for a body that does not fit its type."""
        return cls(headers, OUTCOME_TYPES[headers.type].model_validate(body))


class CommandBus:
    """Sends commands built with `CommandEnvelope` (which carries their `ce_source`), each
    signed by `signer` (adapters/command_signatures.py)."""

    def __init__(
        self,
        settings: Settings,
        signer: CommandSigner,
        *,
        on_event: EventHook | None = None,
        publish_timeout_s: float = 5.0,
    ) -> None:
        self._settings = settings
        self._signer = signer
        self._topics = settings.topics
        self._on_event = on_event
        self._publish_timeout_s = publish_timeout_s
        self._producer = kafka_clients.producer(
            settings, linger_ms=0, request_timeout_ms=int(publish_timeout_s * 1000)
        )
        self._consumer = kafka_clients.consumer(settings, enable_auto_commit=False, group_id=None)
        self._waiting: dict[str, list[asyncio.Future[Outcome]]] = {}  # by command id
        self._reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        try:
            await self._listen_from_end()
        except BaseException:
            await self.stop()
            raise

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions (a producer's lookup fetches metadata, a consumer's does not)."""
        return set(await self._producer.partitions_for(topic))

    async def _listen_from_end(self) -> None:
        partitions = await self.partitions_for(self._topics.events)
        assigned = [TopicPartition(self._topics.events, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the end offsets now: nothing published after start is missed
            await self._consumer.position(tp)
        self._reader = asyncio.create_task(self._read_events())

    async def broker_reachable(self) -> bool:
        """Asks the cluster for its metadata: True when a broker answers."""
        try:
            return bool(await self._producer.client.fetch_all_metadata())
        except KafkaError:
            return False

    async def stop(self) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._consumer.stop()
        await self._producer.stop()

    async def send(self, command: CommandEnvelope) -> None:
        """Publish a command.

        Raises `strict_json.JsonError` (a ValueError) when its body is not strict JSON (NaN,
        infinities, lone surrogates, too deep): nothing else may reach the topic. Raises
        BrokerUnavailable when Kafka has not acknowledged it within the publish timeout
        (the contract's quick 503). The producer may still deliver a batch it holds once the
        broker is back, so such a command can yet be applied: a retry with the same
        Idempotency-Key (the same command id) is safe either way.
        """
        value = command.value()
        try:
            async with asyncio.timeout(self._publish_timeout_s):
                await self._producer.send_and_wait(
                    self._topics.commands,
                    key=command.key_bytes(),
                    value=value,
                    headers=[*command.kafka_headers(), self._signer.header(command, value)],
                )
        except (TimeoutError, KafkaError) as exc:
            raise BrokerUnavailable(
                f"Kafka did not take the command: {type(exc).__name__}"
            ) from exc

    async def request(self, command: CommandEnvelope, *, timeout_s: float) -> Outcome:
        """Publish a command and wait for the event that answers it.

        Raises BrokerUnavailable (not sent) or TimeoutError (sent, no outcome in time).
        """
        command_id = command.command_id
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(command_id, [])
        waiters.append(future)
        try:
            await self.send(command)
            return await asyncio.wait_for(future, timeout_s)
        finally:
            waiters.remove(future)
            if not waiters:
                self._waiting.pop(command_id, None)

    async def _read_events(self) -> None:
        while True:
            try:
                records = [await self._consumer.getone()]
            except UNREADABLE_FETCH as exc:  # a record aiokafka cannot decode: skipped, warned
                starts = {
                    tp: await self._consumer.position(tp) for tp in self._consumer.assignment()
                }
                records = await skip_unreadable(self._settings, self._consumer, starts, exc)
            for record in records:
                if record.value is None:
                    continue
                try:
                    headers = CloudEventHeaders.from_kafka(list(record.headers))
                    body = json.loads(record.value)
                except (InvalidHeaders, ValueError):
                    log.warning(
                        "event.unreadable", partition=record.partition, offset=record.offset
                    )
                    continue
                if self._on_event is not None:
                    try:
                        self._on_event(headers.type, body, headers.time)
                    except (KeyError, TypeError, ValueError):  # an odd event must not stop replies
                        log.warning("event.unusable", type=headers.type, offset=record.offset)
                self._answer(headers, body, record.offset)

    def _answer(self, headers: CloudEventHeaders, body: dict[str, Any], offset: int) -> None:
        """Hand the event to the requests waiting for the command it answers, if any."""
        waiting = self._waiting.get(headers.causation_id or "", [])
        if not waiting:
            return
        try:
            outcome = Outcome.decode(headers, body)
        except (KeyError, ValidationError):  # answers nobody: the request times out
            log.warning("outcome.unusable", type=headers.type, offset=offset)
            return
        for future in waiting:
            if not future.done():
                future.set_result(outcome)
