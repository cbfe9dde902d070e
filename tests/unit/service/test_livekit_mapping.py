"""The LiveKit mapping and when the adapter calls LiveKit at all (no server needed: the
adapter points at a closed port, so any call it makes fails the test)."""

from __future__ import annotations

import json
from dataclasses import replace
from uuid import uuid4

import pytest
from livekit import api

from service.adapters.livekit_provider import LiveKitProvider, ours, outbound_trunk
from service.domain.errors import Reason, Rejected
from service.domain.model import Credentials, Gateway, SipTrunk
from tests.unit.service.fakes import START


def trunk(**overrides: object) -> SipTrunk:
    values: dict[str, object] = {
        "id": uuid4(),
        "tenant_id": "acme",
        "name": "Office",
        "gateways": (Gateway("2001:db8::1", 5062, "a"), Gateway("sip.example.com", 5060, "b")),
        "authentication": Credentials("user", "Pa55word-x"),
        "advanced": {"transport": "udp", "headers": {"X-A": "1"}, "mediaEncryption": "require"},
        "is_system": False,
        "provider_id": "ST_1",
        "created_at": START,
        "updated_at": START,
        "version": 1,
    }
    return SipTrunk(**(values | overrides))  # type: ignore[arg-type]


def offline_provider() -> LiveKitProvider:
    return LiveKitProvider(
        "http://127.0.0.1:9",
        "key",
        "a-test-secret-long-enough-for-hs256!",
        timeout_s=0.5,
        retries=0,
        default_number="+100",
        owner="me",
    )


def test_mapping() -> None:
    t = trunk()
    info = outbound_trunk(t, "+100", "me")
    assert info.address == "[2001:db8::1]:5062"
    assert list(info.numbers) == ["+100"]
    assert (info.auth_username, info.auth_password) == ("user", "Pa55word-x")
    assert info.transport == api.SIPTransport.SIP_TRANSPORT_UDP
    assert info.media_encryption == api.SIPMediaEncryption.SIP_MEDIA_ENCRYPT_REQUIRE
    assert dict(info.headers) == {"X-A": "1"}
    assert json.loads(info.metadata) == {"owner": "me", "trunkId": str(t.id), "tenantId": "acme"}
    assert ours(info, "me") == str(t.id)
    assert ours(info, "someone-else") is None


async def test_a_change_livekit_cannot_see_calls_nobody() -> None:
    before = trunk()
    after = replace(before, gateways=(before.gateways[0], Gateway("sip.example.com", 5060, "c")))
    provider = offline_provider()
    try:
        assert await provider.update(before, after) == "ST_1"
    finally:
        await provider.aclose()


async def test_a_rename_calls_livekit_and_a_refused_connection_is_provider_unavailable() -> None:
    before = trunk()
    provider = offline_provider()
    try:
        with pytest.raises(Rejected) as refused:
            await provider.update(before, replace(before, name="Renamed"))
    finally:
        await provider.aclose()
    assert refused.value.reason == Reason.PROVIDER_UNAVAILABLE
