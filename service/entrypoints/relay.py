"""The outbox relay process: outbox rows → `sip-trunks.events` / `sip-trunks.state`."""

from __future__ import annotations

import asyncio

from service import bootstrap
from service.config import Settings

__all__ = ["run_relay"]


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    """Publish the outbox until `stop` is set (the relay is built by `service.bootstrap`)."""
    async with bootstrap.relay(settings, until=stop) as relay:
        await relay.run(stop)
