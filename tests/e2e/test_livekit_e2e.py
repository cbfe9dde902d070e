"""REST → … → LiveKit: what a client does over HTTP is what LiveKit holds, read back with
LiveKit's own API; LiveKit's refusals and outages reach the client as 422 and 503."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from livekit import api

from tests.conftest import KAFKA_BOOTSTRAP, at_livekit
from tests.e2e.conftest import SYSTEM_TRUNK_ID
from tests.e2e.stack import Stack, free_port, running_stack
from tests.e2e.test_rest_api import BASE, PASSWORD, create, problem, trunk_body


async def test_rest_changes_are_mirrored_at_livekit(stack: Stack, livekit: api.LiveKitAPI) -> None:
    async with stack.client() as http:
        trunk = await create(http, advanced={"numbers": ["+15550123"], "transport": "tcp"})
        provider_id = trunk["providerId"]
        info = await at_livekit(livekit, provider_id)
        assert info is not None
        assert info.address == "sip-gateway.example.com:5060"
        assert list(info.numbers) == ["+15550123"]
        assert info.transport == api.SIPTransport.SIP_TRANSPORT_TCP
        assert (info.auth_username, info.auth_password) == ("office_sip_user", PASSWORD)

        url = f"{BASE}/{trunk['id']}"
        patched = await http.patch(
            url, json={"name": "Renamed", "authentication": {"password": "********"}}
        )
        assert patched.status_code == 200
        info = await at_livekit(livekit, provider_id)
        assert info is not None
        assert (info.name, info.auth_password) == ("Renamed", PASSWORD)

        assert (await http.delete(url)).status_code == 204
        assert await at_livekit(livekit, provider_id) is None


async def test_livekit_refusal_is_422_provider_rejected(stack: Stack) -> None:
    async with stack.client() as http:
        body = trunk_body(advanced={"headers": {"From": "sip:x@example.com"}})
        doc = problem(await http.post(BASE, json=body), 422, "provider_rejected")
        assert "From" in doc["detail"]


@pytest_asyncio.fixture
async def stack_without_livekit(tmp_path: Path) -> AsyncIterator[Stack]:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there: LiveKit is down
    async with running_stack(tmp_path, KAFKA_BOOTSTRAP, LIVEKIT_URL=closed) as stack:
        yield stack


async def test_livekit_down_is_503_provider_unavailable(stack_without_livekit: Stack) -> None:
    async with stack_without_livekit.client() as http:
        problem(await http.post(BASE, json=trunk_body()), 503, "provider_unavailable")


async def test_the_system_trunk_is_provisioned_at_livekit(
    stack: Stack, livekit: api.LiveKitAPI
) -> None:
    async with stack.client() as http:
        system = (await http.get(f"{BASE}/{SYSTEM_TRUNK_ID}")).json()
    assert system["providerId"].startswith("ST_")
    info = await at_livekit(livekit, system["providerId"])
    assert info is not None
    assert info.address == "sip.platform.example:5060"
