"""The gateway seals the REST body's password before the command leaves (CONTRACT §4.2)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sip_trunk_contracts import MASKED_PASSWORD

from tests.unit.gateway.gateway_fakes import BASE, MemoryBackend, auth, running_app
from tests.unit.service.fakes import SEAL_KEYS

PASSWORD = "Rest-Pa55word-to-seal"
TRUNK = {
    "name": "Office",
    "gateways": [{"ipOrDomain": "sip.example.com", "name": "main"}],
    "authentication": {"username": "office", "password": PASSWORD},
}


@pytest.fixture
async def app() -> AsyncIterator[tuple[httpx.AsyncClient, MemoryBackend]]:
    async with running_app() as running:
        yield running


async def test_a_created_password_is_sent_sealed_and_stored_as_given(
    app: tuple[httpx.AsyncClient, MemoryBackend],
) -> None:
    client, backend = app
    response = await client.post(BASE, headers=auth(), json=TRUNK)
    assert response.status_code == 201, response.text
    [sent] = backend.sent
    assert PASSWORD not in json.dumps(sent.body)
    assert SEAL_KEYS.open(sent.body["authentication"]["password"]) == PASSWORD
    stored = backend.harness.db.trunks[next(iter(backend.harness.db.trunks))].authentication
    assert stored is not None
    assert stored.password == PASSWORD


async def test_a_patched_password_is_sent_sealed_and_the_mask_as_it_is(
    app: tuple[httpx.AsyncClient, MemoryBackend],
) -> None:
    client, backend = app
    trunk = (await client.post(BASE, headers=auth(), json=TRUNK)).json()
    url = f"{BASE}/{trunk['id']}"
    changed = await client.patch(
        url, headers=auth(), json={"authentication": {"password": "N3w-pa55word"}}
    )
    assert changed.status_code == 200, changed.text
    sealed = backend.sent[-1].body["changes"]["authentication"]["password"]
    assert SEAL_KEYS.open(sealed) == "N3w-pa55word"
    kept = await client.patch(
        url, headers=auth(), json={"authentication": {"password": MASKED_PASSWORD}}
    )
    assert kept.status_code == 200, kept.text
    assert backend.sent[-1].body["changes"] == {"authentication": {"password": MASKED_PASSWORD}}


@pytest.mark.parametrize("password", [12345678, ["Pa55word-in-a-list"]])
async def test_a_password_that_is_not_a_string_is_422_and_never_sent(
    app: tuple[httpx.AsyncClient, MemoryBackend], password: object
) -> None:
    client, backend = app
    body = {**TRUNK, "authentication": {"username": "office", "password": password}}
    response = await client.post(BASE, headers=auth(), json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"] == [
        {"pointer": "/authentication/password", "message": "must be a string"}
    ]
    assert backend.sent == []
