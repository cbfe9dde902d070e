"""An in-memory Backend: the real handlers over a FakeDatabase, and a client for the app.

Imported as `tests.unit.gateway.gateway_fakes`.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
from pydantic import SecretStr
from sip_trunk_contracts import CloudEventHeaders, CommandEnvelope

from service.adapters.command_bus import Outcome
from service.config import Settings
from service.entrypoints.gateway.app import create_app
from service.entrypoints.gateway.read_model import ReadModel, TrunkRecord
from service.entrypoints.gateway.tokens import READ_SCOPE, WRITE_SCOPE, mint_token
from service.service_layer.inbound import read_command
from service.service_layer.views import to_view
from tests.unit.service.fakes import SEAL_KEY, TOPICS, Harness, payload

SECRET = "test-secret-of-the-gateway-tests-0123456789-abcdefghij"
TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
BASE = "/api/v1/sip-trunks"
SETTINGS = Settings(
    auth_jwt_secret=SecretStr(SECRET),
    gateway_reply_timeout_s=1.0,
    password_seal_public_key=base64.b64encode(SEAL_KEY).decode(),  # the fake worker's key
)


@dataclass
class Sent:
    ce_type: str
    body: dict[str, Any]
    key: str
    command_id: str
    correlation_id: str


@dataclass
class MemoryBackend:
    """Processes each command at once, then applies its messages to the read model."""

    harness: Harness = field(default_factory=Harness)
    reads: ReadModel = field(default_factory=ReadModel)
    sent: list[Sent] = field(default_factory=list)
    fail_with: BaseException | None = None  # raised by request() instead of sending
    is_ready: bool = True
    running: bool = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def ready(self) -> bool:
        return self.is_ready

    async def request(self, command: CommandEnvelope, *, timeout_s: float) -> Outcome:
        if self.fail_with is not None:
            raise self.fail_with
        ce = command.headers
        self.sent.append(Sent(ce.type, dict(command.body), command.key, ce.id, ce.correlation_id))
        messages = await self.harness.run(read_command(command.value(), command.kafka_headers()))
        for message in messages:  # read-your-writes, as the Kafka backend's event hook does
            time = CloudEventHeaders.from_kafka(message.kafka_headers()).time
            if message.topic == TOPICS.events:
                self.reads.apply(str(message.header("ce_type")), payload(message), time)
            elif message.payload is None:
                self.reads.tombstone(message.key, time)
            else:
                self.reads.snapshot(payload(message))
        event = next(m for m in messages if m.topic == TOPICS.events)
        return Outcome.decode(CloudEventHeaders.from_kafka(event.kafka_headers()), payload(event))

    def seed_system_trunk(self) -> UUID:
        trunk = self.harness.seed_system_trunk()
        view = to_view(trunk).model_dump(mode="json")
        self.reads.upsert(TrunkRecord.of(view, None, trunk.version))
        return trunk.id


def token(tenant: str = TENANT, scopes: tuple[str, ...] = (READ_SCOPE, WRITE_SCOPE)) -> str:
    return mint_token(SECRET, tenant=tenant, scopes=scopes)


def auth(tenant: str = TENANT, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant)}", **headers}


@asynccontextmanager
async def running_app(
    backend: MemoryBackend | None = None, settings: Settings = SETTINGS
) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryBackend]]:
    backend = backend or MemoryBackend()
    app = create_app(settings, backend)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as client,
    ):
        yield client, backend
