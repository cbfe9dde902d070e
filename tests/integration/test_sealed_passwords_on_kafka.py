"""Sealed passwords (CONTRACT §4.2) on the real broker and databases: key rotation, a seal no
key opens, plaintext refused, and accepted only when ACCEPT_PLAINTEXT_PASSWORDS says so."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey
from pydantic import SecretStr
from sip_trunk_contracts import seal_fields

from service.adapters.database import create_engine
from service.adapters.encryption import load_cipher
from service.adapters.sql_unit_of_work import SqlUnitOfWork
from service.config import Settings
from tests.integration.conftest import BACKENDS, NewDatabase, new_database_for
from tests.integration.kafka_stack import CREATE, Client, isolated_settings, running_service

OLD, NEW, STRANGER = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()


def b64(key: PrivateKey) -> str:
    return base64.b64encode(bytes(key)).decode()


def create_body(password: str) -> dict[str, Any]:
    return {
        "trunkId": str(uuid.uuid4()),
        "tenantId": "acme",
        "name": "Office",
        "gateways": [{"ipOrDomain": "sip.example.com", "name": "main"}],
        "authentication": {"username": "office", "password": password},
    }


async def sent_as_is(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    """The outcome of `body` published as it is (no sealing by the client)."""
    value = json.dumps(body).encode()
    return await client.outcome(await client.send_raw_command(CREATE, value, key=body["trunkId"]))


async def stored_password(settings: Settings, trunk_id: str) -> str | None:
    engine = create_engine(settings.resolved_database_url)
    try:
        async with SqlUnitOfWork(engine, load_cipher(None, settings.data_dir)) as uow:
            trunk = await uow.trunks.get(uuid.UUID(trunk_id))
    finally:
        await engine.dispose()
    return trunk.authentication.password if trunk and trunk.authentication else None


def assert_refused_at_the_password(event: dict[str, Any], password: str) -> None:
    assert event["headers"]["ce_type"] == "sip_trunks.TrunkRejected.v1", event
    assert event["body"]["reason"] == "validation_failed"
    assert [e["pointer"] for e in event["body"]["errors"]] == ["/authentication/password"]
    assert password not in json.dumps(event)


async def settings_for(
    backend: str, tmp: Path, new_postgres_database: NewDatabase, **more: Any
) -> Settings:
    url = await new_database_for(backend, tmp, new_postgres_database)
    return isolated_settings(tmp, "sealed", database_url=url, **more)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_worker_with_two_keys_opens_both_and_refuses_what_neither_opens(
    backend: str, tmp_path: Path, new_postgres_database: NewDatabase
) -> None:
    keys = SecretStr(f"{b64(NEW)},{b64(OLD)}")  # rotation under way: the new key first
    settings = await settings_for(
        backend, tmp_path, new_postgres_database, password_seal_private_key=keys
    )
    async with running_service(settings) as client:
        assert client.seal_key == bytes(NEW.public_key)  # producers are given the newest
        for key, password in [(NEW, "Sealed-for-new-1"), (OLD, "Sealed-for-old-1")]:
            body = seal_fields(bytes(key.public_key), create_body(password))
            event = await sent_as_is(client, body)
            assert event["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1", event
            assert await stored_password(settings, body["trunkId"]) == password
        stranger = seal_fields(bytes(STRANGER.public_key), create_body("Sealed-for-none"))
        assert_refused_at_the_password(await sent_as_is(client, stranger), "Sealed-for-none")
        plaintext = await sent_as_is(client, create_body("Plain-text-pw-1"))
        assert_refused_at_the_password(plaintext, "Plain-text-pw-1")
        assert await stored_password(settings, plaintext["body"]["trunkId"]) is None


@pytest.mark.parametrize("backend", BACKENDS)
async def test_plaintext_is_taken_only_when_the_deployment_accepts_it(
    backend: str, tmp_path: Path, new_postgres_database: NewDatabase
) -> None:
    settings = await settings_for(
        backend, tmp_path, new_postgres_database, accept_plaintext_passwords=True
    )
    async with running_service(settings) as client:
        body = create_body("Plain-text-pw-2")
        event = await sent_as_is(client, body)
        assert event["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1", event
        assert await stored_password(settings, body["trunkId"]) == "Plain-text-pw-2"
        sealed = await client.request(CREATE, create_body("Sealed-still-2"))  # sealing works too
        assert sealed["headers"]["ce_type"] == "sip_trunks.TrunkCreated.v1", sealed
