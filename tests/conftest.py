"""Shared test settings. Integration tests need the real services `make test` starts:
Kafka (KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092) and PostgreSQL (TEST_POSTGRES_URL,
default the dev cluster of dev/postgres.sh). A missing service fails the run, never skips it.

`make test` runs the tests as the dev broker's super user `admin` (`dev/kafka.sh as admin`,
which also names the folder of every user's settings in DEV_KAFKA_ENV); the tests of access
control take other users from there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import api

KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:15432/sip_trunks"
)
LIVEKIT_URL = os.environ.get("LIVEKIT_URL", "http://127.0.0.1:7880")
LIVEKIT_API_KEY = os.environ.get("LIVEKIT_API_KEY", "devkey")
LIVEKIT_API_SECRET = os.environ.get("LIVEKIT_API_SECRET", "secret")
DEV_KAFKA_ENV = os.environ.get("DEV_KAFKA_ENV")
# Whether Kafka authenticates and authorizes: the access-control tests need it (and the users).
KAFKA_SECURED = bool(DEV_KAFKA_ENV) and os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") != (
    "PLAINTEXT"
)
needs_kafka_acls = pytest.mark.skipif(
    not KAFKA_SECURED,
    reason="Kafka is PLAINTEXT here (DEV_KAFKA_SECURITY=plaintext, or not run by `make test`)",
)


def env_file(path: Path) -> dict[str, str]:
    """The variables of an env file of dev/kafka.sh (`export NAME=value` lines)."""
    lines = path.read_text().splitlines()
    pairs = [line.removeprefix("export ").split("=", 1) for line in lines if line[:7] == "export "]
    return {name: value for name, value in pairs}


def kafka_user_env(user: str) -> dict[str, str]:
    """`user`'s Kafka settings on the dev broker, as environment variables."""
    assert DEV_KAFKA_ENV, "run through `make test` (dev/kafka.sh as admin ...)"
    return env_file(Path(DEV_KAFKA_ENV) / f"{user}.env")


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
