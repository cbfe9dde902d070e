"""Shared test settings. Integration tests need the real services `make test` starts:
Kafka (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092) and PostgreSQL (TEST_POSTGRES_URL,
default the dev cluster of dev/postgres.sh). A missing service fails the run, never skips it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from livekit import api

KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:55432/sip_trunks"
)
LIVEKIT_URL = os.environ.get("LIVEKIT_URL", "http://127.0.0.1:7880")
LIVEKIT_API_KEY = os.environ.get("LIVEKIT_API_KEY", "devkey")
LIVEKIT_API_SECRET = os.environ.get("LIVEKIT_API_SECRET", "secret")


@pytest_asyncio.fixture
async def livekit() -> AsyncIterator[api.LiveKitAPI]:
    """LiveKit's own API client, to read back what the service did there."""
    client = api.LiveKitAPI(LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET)
    try:
        await asyncio.wait_for(client.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest()), 5)
    except Exception as exc:
        await client.aclose()
        pytest.fail(f"LiveKit not reachable at {LIVEKIT_URL} ({exc!r}): run `make test`")
    yield client
    await client.aclose()


async def at_livekit(livekit: api.LiveKitAPI, provider_id: str) -> api.SIPOutboundTrunkInfo | None:
    listed = await livekit.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    return next((t for t in listed.items if t.sip_trunk_id == provider_id), None)
