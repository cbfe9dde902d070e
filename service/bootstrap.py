"""The composition root: the one place that turns `Settings` into objects.

Every process is built here, once, from settings: the worker's graph (`build`, `worker`), the
relay (`relay`), the gateway's command bus (`gateway_bus`; the gateway package adds its read
model and HTTP layer on top, `entrypoints/gateway/app.py:gateway_app`) and the CLI's
(`cli_bus`). The service layer gets its ports here (a unit-of-work factory, the provider, the
provider's listing, leases, the password seal) and never imports an adapter; entry points take
what is built here, translate and run. Tests build the same graph with other settings.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from service.adapters import kafka_clients
from service.adapters.command_bus import CommandBus, EventHook
from service.adapters.command_signatures import (
    CLI_SOURCE,
    GATEWAY_SOURCE,
    ProducerTrust,
    command_signer,
    producer_trust,
)
from service.adapters.database import create_engine, migrate
from service.adapters.dead_letters import DeadLetters
from service.adapters.encryption import PasswordCipher, load_cipher
from service.adapters.kafka_topics import ensure_topics, restore_topics
from service.adapters.leases import lease_for
from service.adapters.livekit_provider import LiveKitProvider
from service.adapters.outbox_relay import OutboxRelay
from service.adapters.password_seal import password_keys, public_key
from service.adapters.provider_none import NoProvider
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from service.service_layer.handlers import CommandProcessor, MonotonicClock, Services
from service.service_layer.outgoing import MessageFactory
from service.service_layer.ports import (
    Lease,
    ProviderListing,
    TrunkProvider,
    UnitOfWork,
)
from service.service_layer.reconcile import ORPHAN_GRACE_S, ReconcileReport, reconcile
from service.service_layer.system_trunks import provision_system_trunks

__all__ = [
    "CLI_SOURCE",
    "GATEWAY_SOURCE",
    "Container",
    "WorkerGraph",
    "build",
    "cli_bus",
    "gateway_bus",
    "migrate_schema",
    "password_seal_key",
    "relay",
    "worker",
]

Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Container:
    """The worker's object graph: the database, the provider and the service layer on them."""

    settings: Settings
    engine: AsyncEngine
    cipher: PasswordCipher
    services: Services
    processor: CommandProcessor
    # The provider's listing, for `reconcile`; None when the provider keeps no trunks.
    listing: ProviderListing | None
    _closers: tuple[Closer, ...] = field(default=(), repr=False)

    def unit_of_work(self) -> UnitOfWork:
        return SqlUnitOfWork(self.engine, self.cipher)

    def lease(self, job: str) -> Lease:
        """One active holder per database of `job`."""
        return lease_for(self.engine, job)

    async def reconcile(
        self, *, orphan_grace_s: float = ORPHAN_GRACE_S, seen: dict[str, float] | None = None
    ) -> ReconcileReport:
        """One reconcile run (see `service_layer/reconcile.py`); needs a provider that lists."""
        if self.listing is None:
            raise ValueError("reconcile needs PROVIDER=livekit")
        return await reconcile(
            self.listing,
            self.unit_of_work,
            self.services,
            self.lease("reconcile"),
            orphan_grace_s=orphan_grace_s,
            seen=seen,
        )

    async def provision_system_trunks(self) -> int:
        """The trunks of SYSTEM_TRUNKS_FILE, created or updated (see `system_trunks.py`)."""
        return await provision_system_trunks(
            self.settings.system_trunks_file,
            self.unit_of_work,
            self.services,
            self.lease("system-trunks"),
        )

    async def close(self) -> None:
        for close in self._closers:
            await close()
        await self.engine.dispose()


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
    provider: TrunkProvider
    listing: ProviderListing | None = None
    closers: list[Closer] = []
    if settings.provider == "livekit":
        livekit = LiveKitProvider(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            timeout_s=settings.livekit_timeout_s,
            retries=settings.livekit_retries,
            default_number=settings.livekit_default_number,
            owner=settings.livekit_owner,
            breaker_s=settings.livekit_breaker_s,
        )
        provider = listing = livekit
        closers.append(livekit.aclose)
    else:
        provider = NoProvider()
    # One clock for the trunks' timestamps and the messages' ce_time: a TrunkDeleted's time is
    # then after its trunk's createdAt and before that of an id created afresh (the gateway's
    # read model relies on it).
    clock = MonotonicClock()
    services = Services(
        provider=provider,
        messages=MessageFactory(settings.topics, settings.service_source, clock=clock),
        clock=clock,
        after_provider_call=_exit_now if settings.fault_exit_after_provider_call else lambda: None,
        passwords=password_keys(settings),
        accept_plaintext_passwords=settings.accept_plaintext_passwords,
        digest_key=cipher.digest_key,
    )
    processor = CommandProcessor(
        lambda: SqlUnitOfWork(engine, cipher),
        services,
        # Without a provider to wait for, concurrency would only cost CPU.
        concurrency=settings.livekit_concurrency if listing is not None else 1,
    )
    return Container(settings, engine, cipher, services, processor, listing, tuple(closers))


@dataclass(frozen=True, slots=True)
class WorkerGraph:
    """What the worker process runs on: its container, its dead letters, its broker, its
    static membership of the consumer group and whose signed commands it trusts."""

    container: Container
    dead_letters: DeadLetters
    broker: KafkaBroker
    membership: kafka_clients.WorkerMembership
    trust: ProducerTrust


@asynccontextmanager
async def worker(settings: Settings, *, until: asyncio.Event) -> AsyncIterator[WorkerGraph]:
    """The worker's graph, ready to consume: database migrated (waited for until `until` is
    set), topics created, system trunks provisioned. Closed on exit."""
    container = await build(settings, until=until)
    dlt_producer = kafka_clients.producer(settings)
    try:
        await ensure_topics(settings)
        await dlt_producer.start()
        await container.provision_system_trunks()
        yield WorkerGraph(
            container,
            DeadLetters(dlt_producer, settings.topics.dlt),
            kafka_clients.broker(settings, logger=logging.getLogger("faststream")),
            # Claims the group instance id on this host, for as long as the process lives.
            kafka_clients.worker_membership(settings),
            producer_trust(settings),
        )
    finally:
        await dlt_producer.stop()
        await container.close()


@asynccontextmanager
async def relay(settings: Settings, *, until: asyncio.Event) -> AsyncIterator[OutboxRelay]:
    """The outbox relay, its database migrated (it may start before the worker, or during an
    outage: it then waits for the database until `until` is set) and its producer started."""
    engine = create_engine(settings.resolved_database_url)
    # No linger: the relay sends what it read at once, so a batch forms without waiting, and a
    # lone event leaves now (linger 2 ms added 2 ms to every PATCH on the latency bench).
    producer = kafka_clients.producer(settings, linger_ms=0)
    try:
        await migrate(engine, until=until)
        await producer.start()
        yield OutboxRelay(
            engine,
            producer,
            partial(restore_topics, settings),
            batch_size=settings.relay_batch_size,
            processed_retention=timedelta(days=settings.processed_retention_days),
        )
    finally:
        await producer.stop()
        await engine.dispose()


def gateway_bus(settings: Settings, on_event: EventHook) -> CommandBus:
    """The gateway's command bus; `on_event` feeds every outcome event to its read model."""
    return CommandBus(
        settings,
        command_signer(settings),
        on_event=on_event,
        publish_timeout_s=settings.gateway_publish_timeout_s,
    )


def password_seal_key(settings: Settings) -> bytes:
    """The public key the gateway and the CLI seal passwords with (CONTRACT §4.2)."""
    return public_key(settings)


def cli_bus(settings: Settings) -> CommandBus:
    """The command bus of `sip-trunks send`."""
    return CommandBus(settings, command_signer(settings))


async def migrate_schema(settings: Settings) -> str:
    """Apply the migrations; return the database URL, its password hidden."""
    engine = create_engine(settings.resolved_database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    return engine.url.render_as_string(hide_password=True)
