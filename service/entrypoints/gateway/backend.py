"""The gateway's Kafka side: the command bus (requests, outcome events) and the read model."""

from __future__ import annotations

import asyncio
from typing import Protocol

from sip_trunk_contracts import CommandEnvelope

from service.adapters.command_bus import CommandBus, Outcome
from service.entrypoints.gateway.read_model import ReadModel
from service.entrypoints.gateway.state_feed import StateFeed

__all__ = ["Backend", "KafkaBackend"]


class Backend(Protocol):
    """What the HTTP layer needs; tests give it an in-memory one."""

    reads: ReadModel

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool: ...
    async def request(self, command: CommandEnvelope, *, timeout_s: float) -> Outcome:
        """Raises `service.adapters.command_bus.BrokerUnavailable` or `TimeoutError`."""
        ...


class KafkaBackend:
    """The command bus and the state feed around one read model (`gateway_app` builds it)."""

    def __init__(
        self, reads: ReadModel, bus: CommandBus, feed: StateFeed, state_topic: str
    ) -> None:
        self.reads = reads
        self._bus = bus
        self.request = self._bus.request  # the bus's own request-reply, as the protocol asks
        self._state_topic = state_topic
        self._feed = feed

    async def start(self) -> None:
        await self._bus.start()
        try:
            await self._feed.start(await self._bus.partitions_for(self._state_topic))
        except BaseException:
            await self._bus.stop()
            raise

    async def stop(self) -> None:
        await self._bus.stop()
        await self._feed.stop()

    async def ready(self) -> bool:
        if not (self._feed.caught_up.is_set() and self._feed.running and self._bus.running):
            return False
        try:
            async with asyncio.timeout(2.0):
                return await self._bus.broker_reachable()
        except TimeoutError:
            return False
