"""The composition root: builds the service's object graph from settings, once per process."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.database import create_engine, migrate
from service.adapters.encryption import PasswordCipher, load_cipher
from service.adapters.livekit_provider import LiveKitProvider
from service.adapters.provider_none import NoProvider
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.service_layer.handlers import CommandProcessor, MonotonicClock, Services
from service.service_layer.outgoing import MessageFactory
from service.service_layer.ports import TrunkProvider, UnitOfWork

__all__ = ["Container", "build"]


@dataclass(frozen=True, slots=True)
class Container:
    settings: Settings
    engine: AsyncEngine
    cipher: PasswordCipher
    services: Services
    processor: CommandProcessor

    def unit_of_work(self) -> UnitOfWork:
        return SqlUnitOfWork(self.engine, self.cipher)

    @property
    def livekit(self) -> LiveKitProvider | None:
        provider = self.services.provider
        return provider if isinstance(provider, LiveKitProvider) else None

    async def close(self) -> None:
        if self.livekit is not None:
            await self.livekit.aclose()
        await self.engine.dispose()


def _provider(settings: Settings) -> TrunkProvider:
    if settings.provider == "livekit":
        return LiveKitProvider(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            timeout_s=settings.livekit_timeout_s,
            retries=settings.livekit_retries,
            default_number=settings.livekit_default_number,
            owner=settings.livekit_owner,
            breaker_s=settings.livekit_breaker_s,
        )
    return NoProvider()


def _exit_now() -> None:
    # The crash test's fault: die like a killed process, after the provider call and before
    # the database commit (no cleanup, no flush).
    os._exit(86)


async def build(
    settings: Settings, *, run_migrations: bool = True, until: asyncio.Event | None = None
) -> Container:
    """`until`: a long-running process's stop event; the database is then waited for."""
    engine = create_engine(settings.resolved_database_url)
    if run_migrations:
        await migrate(engine, until=until)
    cipher = load_cipher(
        settings.encryption_key.get_secret_value() if settings.encryption_key else None,
        settings.data_dir,
    )
    # One clock for the trunks' timestamps and the messages' ce_time: a TrunkDeleted's time is
    # then after its trunk's createdAt and before that of an id created afresh (the gateway's
    # read model relies on it).
    clock = MonotonicClock()
    services = Services(
        provider=_provider(settings),
        messages=MessageFactory(settings.topics, settings.service_source, clock=clock),
        clock=clock,
        after_provider_call=_exit_now if settings.fault_exit_after_provider_call else lambda: None,
    )
    processor = CommandProcessor(lambda: SqlUnitOfWork(engine, cipher), services)
    return Container(settings, engine, cipher, services, processor)
