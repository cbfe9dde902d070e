"""The composition root: builds the service's object graph from settings, once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters.database import create_engine, migrate
from service.adapters.encryption import PasswordCipher, load_cipher
from service.adapters.provider_none import NoProvider
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.handlers import CommandProcessor, Services
from service.outgoing import MessageFactory
from service.ports import TrunkProvider, UnitOfWork

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

    async def close(self) -> None:
        await self.engine.dispose()


def _provider(settings: Settings) -> TrunkProvider:
    providers: dict[str, Callable[[], TrunkProvider]] = {"none": NoProvider}
    return providers[settings.provider]()


async def build(settings: Settings, *, run_migrations: bool = True) -> Container:
    engine = create_engine(settings.resolved_database_url)
    if run_migrations:
        await migrate(engine)
    cipher = load_cipher(
        settings.encryption_key.get_secret_value() if settings.encryption_key else None,
        settings.data_dir,
    )
    services = Services(
        provider=_provider(settings),
        messages=MessageFactory(settings.topics, settings.service_source),
    )
    processor = CommandProcessor(lambda: SqlUnitOfWork(engine, cipher), services)
    return Container(settings, engine, cipher, services, processor)
